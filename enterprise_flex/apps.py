from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnterpriseFlexConfig(AppConfig):
    name = "enterprise_flex"
    verbose_name = _("Enterprise Flexible")

    def ready(self) -> None:
        from portal.invariants import invariant_register

        from .invariants import CHECKS

        for name, check in CHECKS.items():
            invariant_register(name, check)
