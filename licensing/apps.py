from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = _("Licensing")

    def ready(self) -> None:
        from allauth.account.signals import email_confirmed

        from portal.emails import composer_register
        from portal.invariants import invariant_register

        from . import checks  # noqa: F401  (registers the system checks)
        from .invariants import CHECKS
        from .services.issue import LICENSE_EMAIL_COMPOSER, license_email_compose

        for name, check in CHECKS.items():
            invariant_register(name, check)
        composer_register(LICENSE_EMAIL_COMPOSER, license_email_compose)

        email_confirmed.connect(_bind_shares, dispatch_uid="licensing-bind-shares")


def _bind_shares(sender: object, request: object, email_address: Any, **kwargs: Any) -> None:
    # The receiver only hands over to the service; the rule lives there.
    from .services import shares_bind_verified_email

    shares_bind_verified_email(user=email_address.user, email=email_address.email)
