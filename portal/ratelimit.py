"""One budget of failed code attempts per user: serials, notification IDs and vouchers share it.

Codes are guessable only by trying many; counting failures (not attempts) per user lets honest
typists retry freely while an enumeration stops after a handful of misses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from .models import Organization
from .services import audit_record

GROUP = "portal.failed-code-attempts"
PERIOD_SECONDS = 600


@dataclass(frozen=True)
class Budget:
    exhausted: bool
    minutes_left: int


def _rate() -> str:
    return f"{settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES}/10m"


def failed_attempts_budget(request: HttpRequest) -> Budget:
    """Whether the user has used up their failed attempts, and for how long."""
    usage = get_usage(request, group=GROUP, key="user_or_ip", rate=_rate(), increment=False)
    if usage is None:
        return Budget(exhausted=False, minutes_left=0)
    exhausted = usage["count"] >= settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES
    return Budget(exhausted=exhausted, minutes_left=max(1, math.ceil(usage["time_left"] / 60)))


def failed_attempt_record(
    request: HttpRequest, *, action: str, organization: Organization | None
) -> Budget:
    """Counts one failed attempt; the one that uses up the budget writes the audit `action`."""
    usage = get_usage(request, group=GROUP, key="user_or_ip", rate=_rate(), increment=True)
    if usage is not None and usage["count"] == settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES:
        user = request.user if request.user.is_authenticated else None
        audit_record(
            action=action,
            actor=user,  # type: ignore[arg-type]
            organization=organization,
            details={"ip": request.META.get("REMOTE_ADDR", "")},
        )
    return failed_attempts_budget(request)
