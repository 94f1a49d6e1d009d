from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def signing_key_check(app_configs: Any, **kwargs: Any) -> list[Error]:
    """Production refuses to run without its license signing key."""
    path = settings.LICENSE_SIGNING_KEY_FILE
    if settings.PRODUCTION and not path.is_file():
        return [
            Error(
                f"LICENSE_SIGNING_KEY_FILE ({path}) does not exist.",
                hint="Create it with `manage.py signing_key create --path FILE` and keep it safe.",
                id="licensing.E001",
            )
        ]
    return []
