"""Which Redis servers this process found unreachable lately, shared by the cache and the
broker hand-off.

The cache and the Celery broker are usually the same Redis: once one of them has waited for a
timeout, the other should not wait again in the same request. A server marked down is skipped
for `RETRY_AFTER` seconds, then tried again, so a dead or hung Redis costs each process one
short timeout every few seconds instead of one per call.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

RETRY_AFTER = 5.0
_down_until: dict[str, float] = {}


def _server(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def is_down(url: str) -> bool:
    return time.monotonic() < _down_until.get(_server(url), 0.0)


def mark_down(url: str, exc: BaseException, *, what: str) -> None:
    server = _server(url)
    if not is_down(url):
        logger.warning(
            "Redis at %s unavailable for the %s (%r); skipping it for %.0f s",
            server,
            what,
            exc,
            RETRY_AFTER,
        )
    _down_until[server] = time.monotonic() + RETRY_AFTER


def reset() -> None:
    """Forgets every failure (tests that change servers)."""
    _down_until.clear()
