"""One guard for every typed code: budgets of failed attempts per user, per client IP and for
the whole portal, one translated message, on every path that looks a code up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from licensing.codes import generate_code, generate_short_code
from licensing.models import License, SerialNumber
from portal.models import AuditEvent, FailedCodeAttempt
from portal.settings import redis_cache
from tests.licensing.factories import LicenseFactory, SerialNumberFactory
from tests.licensing.wizard import post_step
from tests.portal.factories import MembershipFactory
from tests.processes import closed_port_url
from tests.upgrades.factories import catalog, licensed
from tests.vouchers.factories import VoucherFactory
from tests.vouchers.wizard import form_errors, submit_codes
from upgrades.models import UpgradeNotification
from upgrades.services import notifications_create

pytestmark = pytest.mark.django_db

ONE_MESSAGE = "Too many codes were not recognised. For your security, try again in"


def page_text(response: Any) -> str:
    text = response.content.decode()
    if response.context:
        text += " ".join(str(m) for m in response.context.get("messages", []))
    return text


# Each path is (what to type, how to submit it) -> the page's text. "good" makes a code the
# organization could use; "bad" one that is refused after a lookup.


def _serial(client: Client, member: Any, good: bool) -> str:
    code = SerialNumberFactory().code if good else generate_code()
    client.get(reverse("get-a-key"))
    return page_text(post_step(client, "serial", {"serial": code}))


def _renewal(client: Client, member: Any, good: bool) -> str:
    license = LicenseFactory(owner=member.organization)
    code = (
        SerialNumberFactory(version=license.version, kind=SerialNumber.Kind.RENEWAL).code
        if good
        else generate_code()
    )
    url = reverse("license-renew", kwargs={"pk": license.pk})
    return page_text(client.post(url, {"serial": code}, follow=True))


def _notification(member: Any, good: bool) -> str:
    if not good:
        return generate_short_code()
    old, new = catalog()
    licensed(member.organization, old, quantity=2, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    return UpgradeNotification.objects.get(organization=member.organization).code


def _upgrade_form(client: Client, member: Any, good: bool) -> str:
    code = _notification(member, good)
    client.get(reverse("upgrade"))
    response = client.post(
        reverse("upgrade"),
        {"upgrade_wizard-current_step": "notification", "notification-notification_id": code},
    )
    return page_text(response)


def _upgrade_link(client: Client, member: Any, good: bool) -> str:
    code = _notification(member, good)
    return page_text(client.get(reverse("upgrade"), {"notification": code}))


def _vouchers(client: Client, member: Any, good: bool) -> str:
    code = VoucherFactory().code if good else generate_code()
    response = submit_codes(client, code)
    if response.status_code == 302:
        return page_text(client.get(response["Location"]))
    return str(form_errors(response))


PATHS: dict[str, Callable[[Client, Any, bool], str]] = {
    "get a key": _serial,
    "renewal on a license": _renewal,
    "upgrade wizard": _upgrade_form,
    "upgrade link (GET ?notification=)": _upgrade_link,
    "voucher center": _vouchers,
}


@pytest.fixture
def member(client: Client) -> Any:
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def _spend(count: int, *, user: Any = None, ip: str = "127.0.0.1", minutes_ago: float = 1) -> None:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    FailedCodeAttempt.objects.bulk_create(
        [FailedCodeAttempt(at=at, user=user, ip=ip, action="test") for _ in range(count)]
    )


@pytest.mark.parametrize("path", PATHS)
def test_every_path_counts_a_refused_code(client: Client, member: Any, path: str) -> None:
    PATHS[path](client, member, False)
    attempt = FailedCodeAttempt.objects.get()
    assert attempt.user == member.user and attempt.ip == "127.0.0.1"


@pytest.mark.parametrize("path", PATHS)
def test_every_path_refuses_with_the_one_message_once_the_budget_is_spent(
    client: Client, member: Any, path: str
) -> None:
    _spend(10, user=member.user, minutes_ago=9.5)
    text = PATHS[path](client, member, True)  # even a good code is not looked up
    assert ONE_MESSAGE in text and "1 minute." in text and "contact customer care" in text
    assert not License.objects.filter(owner=member.organization, source="upgrade").exists()
    assert not SerialNumber.objects.filter(status=SerialNumber.Status.REDEEMED).exists()


@pytest.mark.parametrize("path", PATHS)
def test_the_message_is_translated(client: Client, member: Any, path: str) -> None:
    _spend(10, user=member.user)
    client.cookies["django_language"] = "pt-br"
    text = PATHS[path](client, member, True)
    assert "Muitos códigos não foram reconhecidos" in text, text[:2000]


# Get a key reads the budgets in the serial's own lookup (CodeGuard.counted): every scope still
# refuses a good code, and a code the organization redeemed is not confirmed either.
@pytest.mark.parametrize("scope", ["user", "ip", "global"])
def test_a_good_serial_is_refused_whichever_budget_is_spent(
    client: Client, member: Any, settings, scope: str
) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_CODE_ATTEMPTS_PER_IP = 30
    settings.PORTAL_CODE_ATTEMPTS_GLOBAL = 300
    if scope == "user":
        _spend(10, user=member.user, ip="203.0.113.9")
    elif scope == "ip":
        _spend(30, ip="127.0.0.1")
    else:
        _spend(300, ip="203.0.113.9")
    text = _serial(client, member, True)
    assert ONE_MESSAGE in text
    assert not SerialNumber.objects.filter(status=SerialNumber.Status.REDEEMED).exists()


def test_a_serial_the_organization_redeemed_is_not_confirmed_while_the_budget_is_spent(
    client: Client, member: Any
) -> None:
    license = LicenseFactory(owner=member.organization)
    serial = SerialNumberFactory(
        status=SerialNumber.Status.REDEEMED, redeemed_by=member.organization, license=license
    )
    _spend(10, user=member.user)
    client.get(reverse("get-a-key"))
    text = page_text(post_step(client, "serial", {"serial": serial.code}))
    assert ONE_MESSAGE in text and license.key not in text and "already redeemed" not in text


def test_one_short_of_the_budget_a_good_serial_goes_through(client: Client, member: Any) -> None:
    _spend(9, user=member.user)
    text = _serial(client, member, True)
    assert ONE_MESSAGE not in text and "Registration and contacts" in text


def test_the_budget_slides_with_time(client: Client, member: Any) -> None:
    _spend(10, user=member.user, minutes_ago=11)  # out of the 10-minute window
    assert ONE_MESSAGE not in _serial(client, member, True)


def test_new_accounts_on_one_address_share_its_budget(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    """Five new accounts no longer buy fifty guesses."""
    settings.PORTAL_CODE_ATTEMPTS_PER_IP = 12
    refused_at = None
    for account in range(5):
        member = MembershipFactory()
        client.force_login(member.user)
        for guess in range(3):
            if ONE_MESSAGE in _serial(client, member, False):
                refused_at = refused_at or (account, guess)
    assert refused_at == (4, 0)  # the 13th guess, from a fifth account with its own budget left
    assert FailedCodeAttempt.objects.count() == 12
    event = AuditEvent.objects.get(action="serial.rate_limited")
    assert event.details == {"ip": "127.0.0.1", "scope": "ip"}


def test_a_portal_wide_budget_stops_many_accounts_on_many_addresses(
    client: Client, settings, caplog
) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_CODE_ATTEMPTS_GLOBAL = 6
    texts = []
    for address in range(8):
        member = MembershipFactory()
        client.force_login(member.user)
        client.defaults["REMOTE_ADDR"] = f"198.51.100.{address + 1}"
        texts.append(_serial(client, member, False))
    assert [ONE_MESSAGE in text for text in texts] == [False] * 6 + [True] * 2
    assert AuditEvent.objects.get(action="serial.rate_limited").details["scope"] == "global"
    assert "portal-wide budget" in caplog.text


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    settings.PORTAL_CODE_ATTEMPTS_PER_IP = 2
    client.defaults["REMOTE_ADDR"] = "10.0.0.2"  # the proxy
    for forwarded in ["203.0.113.5", "203.0.113.5", "203.0.113.6"]:
        member = MembershipFactory()
        client.force_login(member.user)
        client.defaults["HTTP_X_FORWARDED_FOR"] = forwarded
        _serial(client, member, False)
    # A client cannot move its failures elsewhere by writing its own X-Forwarded-For entry:
    # the proxy appends the address it saw, and only that (rightmost) entry is trusted.
    client.defaults["HTTP_X_FORWARDED_FOR"] = "198.51.100.77, 203.0.113.5"
    member = MembershipFactory()
    client.force_login(member.user)
    assert ONE_MESSAGE in _serial(client, member, True)
    assert sorted(FailedCodeAttempt.objects.values_list("ip", flat=True)) == [
        "203.0.113.5",
        "203.0.113.5",
        "203.0.113.6",
    ]


def test_ipv6_clients_are_counted_by_their_64_block(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_CODE_ATTEMPTS_PER_IP = 2
    for host in ["2001:db8:1:2::10", "2001:db8:1:2::11"]:  # one subscriber's /64
        member = MembershipFactory()
        client.force_login(member.user)
        client.defaults["REMOTE_ADDR"] = host
        _serial(client, member, False)
    client.defaults["REMOTE_ADDR"] = "2001:db8:1:2:ffff::1"
    assert ONE_MESSAGE in _serial(client, MembershipFactory(), True)


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(client: Client, member: Any) -> None:
    client.defaults["HTTP_X_FORWARDED_FOR"] = "198.51.100.77"
    _serial(client, member, False)
    assert FailedCodeAttempt.objects.get().ip == "127.0.0.1"


def test_the_budget_holds_while_redis_is_down(client: Client, member: Any, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CACHES = {"default": redis_cache(closed_port_url())}
    for _ in range(10):
        _serial(client, member, False)
    assert ONE_MESSAGE in _serial(client, member, True)
