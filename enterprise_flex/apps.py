from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EnterpriseFlexConfig(AppConfig):
    name = "enterprise_flex"
    verbose_name = _("Enterprise Flexible")
