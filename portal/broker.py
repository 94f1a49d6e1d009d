"""Handing work to Celery from a request: at once, or not at all.

Every hand-off has a safety net that does not need the broker at that moment: outbox emails are
sent by the periodic relay, voucher conversions by the resume job, version publications by the
daily eligibility job. So a request never waits for a broker that is down (more than one short
timeout, shared with the cache through portal.breaker) and never fails because of it.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from . import breaker

logger = logging.getLogger(__name__)

UNAVAILABLE = (OperationalError, RedisError, OSError)


def enqueue(task: Task, *args: Any) -> bool:  # type: ignore[type-arg]
    """Queues `task(*args)`; False (logged) when the broker is down or the hand-off failed."""
    url = str(task.app.conf.broker_url or "")
    if breaker.is_down(url):
        logger.warning("Broker down: %s%r left to its safety net", task.name, args)
        return False
    try:
        task.delay(*args)
    except UNAVAILABLE as exc:
        breaker.mark_down(url, exc, what="broker")
        return False
    except Exception:  # the task itself failed (eager mode): it recorded what it needs
        logger.exception("Hand-off of %s%r failed", task.name, args)
        return False
    return True
