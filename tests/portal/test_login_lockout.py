"""Wrong passwords from elsewhere never lock a user out; the client address behind trusted
proxies is the one the limits count and the audit trail records."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from portal.models import AuditEvent
from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed login attempts"


def _login(client: Client, email: str, password: str, **headers: str) -> Any:
    return client.post(reverse("account_login"), {"login": email, "password": password}, **headers)


def test_an_attackers_wrong_passwords_do_not_lock_the_owner_out(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    victim = MembershipFactory().user
    attacker = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.66")
    for _ in range(8):
        _login(attacker, victim.email, "guess")
    # The attacker's own address is now refused, even with the right password…
    assert LOCKED in _login(attacker, victim.email, PASSWORD).content.decode()
    # …but the owner, behind the same proxy from another address, logs in.
    owner = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    response = _login(owner, victim.email, PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")


def test_wrong_passwords_from_one_address_are_limited_across_accounts() -> None:
    members = [MembershipFactory().user for _ in range(3)]
    client = Client(REMOTE_ADDR="203.0.113.9")
    texts = [
        _login(client, user.email, "guess").content.decode() for user in members for _ in range(4)
    ]
    assert any(LOCKED in text for text in texts)  # 10 per minute per address


def test_a_failed_login_is_audited_with_the_client_address(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_TRUSTED_PROXY_COUNT = 2  # a load balancer, then nginx
    user = MembershipFactory().user
    client = Client(
        REMOTE_ADDR="10.0.0.3",
        # written by the client, by the load balancer, by nginx
        HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.20, 10.0.0.9",
    )
    _login(client, user.email, "guess")
    event = AuditEvent.objects.get(action="account.login_failed")
    assert event.details == {"email": user.email, "ip": "203.0.113.20"}


def test_audit_events_of_a_request_record_its_client_address(client: Client) -> None:
    member = MembershipFactory()
    client.force_login(member.user)
    client.post(
        reverse("members"),
        {"email": "colleague@example.com", "role": "member"},
        REMOTE_ADDR="198.51.100.30",
    )
    assert AuditEvent.objects.get(action="invitation.sent").details["ip"] == "198.51.100.30"
