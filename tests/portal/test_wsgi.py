"""The WSGI entry point gunicorn loads in each worker."""

from __future__ import annotations

import subprocess
import sys


def test_the_loaded_application_is_frozen_out_of_the_collector() -> None:
    # In a fresh interpreter: importing portal.wsgi here would freeze the test process.
    code = (
        "import gc; import portal.wsgi; "
        "assert callable(portal.wsgi.application); print(gc.get_freeze_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert int(result.stdout.strip().splitlines()[-1]) > 10_000
