"""What the code running for a request (or a task) knows about it without being passed it.

The request ID reaches every log line (portal.logs.RequestIdFilter), the client address reaches
the audit trail (portal.services.audit_record), and the channel-partner delegation a request acts
under reaches the audit trail, the mint and the license email, without threading the request
through every service (a caller that forgot to pass it would be a hole). Context variables are
per thread and per asyncio task, so concurrent requests never see each other's values.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest

if TYPE_CHECKING:
    from .models import Delegation

request_id: ContextVar[str] = ContextVar("portal_request_id", default="-")
client_ip: ContextVar[str] = ContextVar("portal_client_ip", default="")
_delegation: ContextVar[Delegation | None] = ContextVar("portal_delegation", default=None)


def current_delegation() -> Delegation | None:
    """The delegation the current request acts under (a partner acting for a customer), or None.

    Set by portal.http.organization_required for the duration of the view, and by a voucher
    conversion that a worker finishes for a partner; Celery tasks and commands run with none.
    """
    return _delegation.get()


@contextmanager
def acting_under(delegation: Delegation | None) -> Iterator[None]:
    token = _delegation.set(delegation)
    try:
        yield
    finally:
        _delegation.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def _clean_ip(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.7:51234
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def get_client_ip(request: HttpRequest) -> str:
    """The client's address, trusting only the PORTAL_TRUSTED_PROXY_COUNT proxies in front.

    Each trusted proxy appends the address it received the request from to X-Forwarded-For, so
    with N proxies the client is the Nth entry from the right; entries further left were written
    by the client and are ignored. With no trusted proxy, X-Forwarded-For is ignored entirely.
    """
    remote = _clean_ip(request.META.get("REMOTE_ADDR", "")) or "0.0.0.0"  # noqa: S104
    count = settings.PORTAL_TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [part for part in header.split(",") if part.strip()]
    if not forwarded:
        return remote
    # Fewer entries than proxies: the request skipped a proxy; the leftmost entry is still one a
    # trusted proxy wrote.
    candidate = forwarded[-count] if len(forwarded) >= count else forwarded[0]
    return _clean_ip(candidate) or remote


def address_block(ip: str) -> str:
    """The unit a per-address limit counts: the address itself for IPv4, its /64 for IPv6 (one
    subscriber is usually given a whole /64, so single IPv6 addresses cost nothing to change)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False).network_address)
    return str(address)
