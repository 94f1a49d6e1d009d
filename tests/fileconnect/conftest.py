from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def fileconnect_root(settings, tmp_path: Path) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """Each test stores release files in its own directory, served by the portal itself."""
    root = tmp_path / "fileconnect"
    settings.STORAGES = {
        **settings.STORAGES,
        "fileconnect": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root},
        },
    }
    settings.FILECONNECT_X_ACCEL_LOCATION = ""
    yield root
