from __future__ import annotations

import ctypes
import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

application = get_wsgi_application()

# glibc: M_MMAP_THRESHOLD. Allocations at least this large are mapped and unmapped on their own.
MMAP_THRESHOLD = 4 << 20


def large_allocations_returned(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fixes glibc's mmap threshold, so that large blocks go back to the system when freed.

    A login's Argon2id check (portal/hashers.py) allocates 19 MiB. glibc serves the first one
    with mmap and returns it, then raises its threshold to that size and keeps the next ones on
    the heap: every worker that had checked a password stayed 19 MiB larger for good. With a
    fixed threshold each check maps its block and returns it (about 3 ms more per check, for
    the page faults). False where the C library has no mallopt (musl, macOS): nothing to fix.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(-3, threshold))  # -3: M_MMAP_THRESHOLD


large_allocations_returned()

# Production refuses to serve without its signing key rather than fail on the first license.
from django.conf import settings  # noqa: E402

if settings.PRODUCTION:
    from licensing.signing import get_signing_key

    get_signing_key()

# Everything loaded so far (Django, the apps, the URLconf's modules) lives as long as the process:
# moved out of the collector's generations, it is no longer walked by every full collection,
# which cost a list page about 2 ms of its 20 ms of CPU (measured with gc.callbacks).
gc.freeze()
