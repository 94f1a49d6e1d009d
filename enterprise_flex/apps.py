from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnterpriseFlexConfig(AppConfig):
    name = "enterprise_flex"
    verbose_name = _("Enterprise Flexible")

    def ready(self) -> None:
        from portal.invariants import invariant_register
        from portal.services import membership_ended_register

        from .invariants import CHECKS
        from .services import contract_access_end, contract_access_end_problem

        for name, check in CHECKS.items():
            invariant_register(name, check)
        # A member removed from the organization leaves its contracts too, unless they are the
        # last super user of one.
        membership_ended_register(
            "enterprise_flex", contract_access_end, problem=contract_access_end_problem
        )
