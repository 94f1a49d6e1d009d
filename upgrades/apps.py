from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UpgradesConfig(AppConfig):
    name = "upgrades"
    verbose_name = _("Version upgrades")

    def ready(self) -> None:
        from licensing.selectors import upgrade_offer_register
        from portal.invariants import invariant_register

        from .invariants import CHECKS
        from .selectors import upgrade_open_for

        for name, check in CHECKS.items():
            invariant_register(name, check)
        upgrade_offer_register("upgrades", upgrade_open_for)
