"""The delegation a request acts under, for code that runs below the view.

A partner's user acting for a customer changes two things deep inside services: the audit trail
records the partner and the customer (`AuditEvent.organization` / `acting_for`), and a license
email also goes to the customer. Passing the delegation through every service call would let one
caller forget it; `portal.http.organization_required` sets it for the duration of the view
instead, and `audit_record` and the license email read it. Celery tasks and commands run with
none. It lives in a context variable, so it never leaks into another request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Delegation

_current: ContextVar[Delegation | None] = ContextVar("portal_delegation", default=None)


def current_delegation() -> Delegation | None:
    """The delegation the current request acts under, or None."""
    return _current.get()


@contextmanager
def acting_under(delegation: Delegation | None) -> Iterator[None]:
    token = _current.set(delegation)
    try:
        yield
    finally:
        _current.reset(token)
