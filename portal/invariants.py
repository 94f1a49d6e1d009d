"""What must always hold, whatever the code paths did: `manage.py check_invariants` runs it.

Each app states its own invariants and registers them here from its AppConfig.ready, so that
imports keep their direction (portal knows no domain app; licensing registers serials and
licenses, upgrades its lines, vouchers its vouchers). A check yields one line per violation,
naming the row, so that a failing run says what to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone


@dataclass(frozen=True)
class Options:
    """What a run was asked to tolerate."""

    outbox_max_age: timedelta = timedelta(minutes=15)


Check = Callable[[Options], Iterable[str]]


@dataclass(frozen=True)
class Violation:
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


_REGISTRY: dict[str, Check] = {}


def invariant_register(name: str, check: Check) -> None:
    """Adds a check under `name`; registering the same name again replaces it (reloads)."""
    _REGISTRY[name] = check


def registered() -> list[str]:
    return sorted(_REGISTRY)


def invariants_check(*, options: Options | None = None) -> Iterator[Violation]:
    """Runs every registered check and yields its violations, check by check."""
    options = options or Options()
    for name in registered():
        for message in _REGISTRY[name](options):
            yield Violation(name, message)


# -- the core's own -------------------------------------------------------------------------------


def outbox_nothing_stale(options: Options) -> Iterator[str]:
    """No email stays unsent longer than the threshold (the relay lost or gave up on it)."""
    from .models import OutboundEmail

    cutoff = timezone.now() - options.outbox_max_age
    stale = (
        OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT)
        .filter(created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", "status", "created_at", "template")
    )
    for pk, status, created_at, template in stale.iterator():
        yield (
            f"email {pk} ({template}) is {status} since {created_at:%Y-%m-%d %H:%M:%S %Z}, "
            f"older than {options.outbox_max_age}"
        )
