from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = _("Portal")

    def ready(self) -> None:
        from .invariants import invariant_register, outbox_nothing_stale

        invariant_register("outbox.nothing_stale", outbox_nothing_stale)

        from .logs import install

        install()
