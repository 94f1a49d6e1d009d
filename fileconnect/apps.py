from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FileconnectConfig(AppConfig):
    name = "fileconnect"
    verbose_name = _("FileConnect")
