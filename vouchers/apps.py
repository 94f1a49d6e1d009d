from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VouchersConfig(AppConfig):
    name = "vouchers"
    verbose_name = _("Voucher center")

    def ready(self) -> None:
        from portal.emails import attachment_source_register
        from portal.invariants import invariant_register

        from .emails import CONVERSION_FILES, conversion_files_zip
        from .invariants import CHECKS

        for name, check in CHECKS.items():
            invariant_register(name, check)
        # The conversion email's zip is named by the outbox row and built when it is sent.
        attachment_source_register(CONVERSION_FILES, conversion_files_zip)
