"""A notification ID of another organization the user can act for (another membership, a
customer that delegated to the user's partner) is a genuine ID, not a guess: the wizard says
where it belongs and counts no failed attempt. Any other organization's ID still reads and
counts as unknown, so its existence does not leak."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from licensing.codes import generate_short_code
from portal.models import FailedCodeAttempt, Membership
from portal.policy import Scope
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory
from tests.upgrades.factories import licensed
from tests.upgrades.test_wizard import current, errors, step
from upgrades.models import UpgradeNotification
from upgrades.services import notifications_create

pytestmark = pytest.mark.django_db


def _notification_of(organization, s) -> UpgradeNotification:  # type: ignore[no-untyped-def]
    licensed(organization, s["old"])
    notifications_create(version=s["new"], today=timezone.localdate())
    return UpgradeNotification.objects.get(organization=organization)


def _notification_reads(captured: CaptureQueriesContext) -> int:
    """The SELECTs that read the notification table (its rows, not a join from its lines)."""
    from_notifications = re.compile(r'\bFROM "upgrades_upgradenotification"')
    return sum(
        1
        for query in captured.captured_queries
        if query["sql"].startswith("SELECT") and from_notifications.search(query["sql"])
    )


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    """The error messages the page shows (not "You are now acting for…")."""
    return [str(m) for m in response.wsgi_request._messages if m.level_tag == "error"]


def test_a_link_of_another_membership_says_where_it_belongs(client, setup) -> None:  # type: ignore[no-untyped-def]
    # The user is also a member of a second organization; the link opened while working in
    # the first one counted as a guessed code, ten of them locking the user out of codes.
    user = setup["member"].user
    second = MembershipFactory(user=user, role=Membership.Role.MEMBER).organization
    notification = _notification_of(second, setup)
    for _ in range(12):
        response = client.get(reverse("upgrade"), {"notification": notification.code})
        assert current(response) == "notification"
    (message,) = _messages(response)
    assert f"is for {second.name}" in message and "organization menu" in message
    assert not FailedCodeAttempt.objects.exists()
    # Typed in the first step, the same.
    response = step(client, "notification", {"notification_id": notification.code})
    assert f"is for {second.name}" in errors(response)
    assert not FailedCodeAttempt.objects.exists()
    # Switched to it, the link opens.
    client.post(reverse("organization-switch"), {"organization": second.pk})
    response = client.get(reverse("upgrade"), {"notification": notification.code})
    assert current(response) == "line"


def test_a_link_of_a_customer_the_partner_acts_for_says_where_it_belongs(client, setup) -> None:  # type: ignore[no-untyped-def]
    partner = PartnerFactory()
    user = MembershipFactory(organization=partner).user
    first = DelegationFactory(partner=partner, scopes=[Scope.OBTAIN_KEYS])
    second = DelegationFactory(partner=partner, scopes=[Scope.OBTAIN_KEYS])
    notification = _notification_of(second.customer, setup)
    client.force_login(user)
    client.post(reverse("partner-act", args=[first.pk]))
    response = client.get(reverse("upgrade"), {"notification": notification.code})
    assert current(response) == "notification"
    (message,) = _messages(response)
    assert f"is for {second.customer.name}" in message and "Customers page" in message
    assert not FailedCodeAttempt.objects.exists()


def test_a_partner_acting_for_a_customer_is_told_to_go_back_first(client, setup) -> None:  # type: ignore[no-untyped-def]
    # A partner's user who is also a member of a customer: while acting for another customer
    # the organization menu is hidden, so the way there starts with "Back to <partner>".
    partner = PartnerFactory()
    user = MembershipFactory(organization=partner).user
    own = MembershipFactory(user=user).organization
    acting = DelegationFactory(partner=partner, scopes=[Scope.OBTAIN_KEYS])
    notification = _notification_of(own, setup)
    client.force_login(user)
    client.post(reverse("partner-act", args=[acting.pk]))
    response = client.get(reverse("upgrade"), {"notification": notification.code})
    (message,) = _messages(response)
    assert f"is for {own.name}, not {acting.customer.name}" in message
    assert f"“Back to {partner.name}”" in message
    assert not FailedCodeAttempt.objects.exists()


@pytest.mark.parametrize("whose", ["unknown", "stranger", "no_obtain_keys_scope"])
def test_any_other_id_still_counts_and_reads_as_unknown(client, setup, whose) -> None:  # type: ignore[no-untyped-def]
    partner = PartnerFactory()
    user = MembershipFactory(organization=partner).user
    acting = DelegationFactory(partner=partner, scopes=[Scope.OBTAIN_KEYS])
    if whose == "unknown":
        code = generate_short_code()
    elif whose == "stranger":  # an organization the user has nothing to do with
        code = _notification_of(MembershipFactory().organization, setup).code
    else:  # a customer that delegated to the partner, but not key obtaining
        other = DelegationFactory(partner=partner, scopes=[Scope.VIEW_LICENSES])
        code = _notification_of(other.customer, setup).code
    client.force_login(user)
    client.post(reverse("partner-act", args=[acting.pk]))
    response = client.get(reverse("upgrade"), {"notification": code})
    (message,) = _messages(response)
    assert "not open for your organization" in message
    assert FailedCodeAttempt.objects.count() == 1
    response = step(client, "notification", {"notification_id": code})
    assert "no open upgrade notification" in errors(response)
    assert FailedCodeAttempt.objects.count() == 2


def test_an_id_of_another_membership_reads_the_notification_once(client, setup) -> None:  # type: ignore[no-untyped-def]
    # Looked up here, then elsewhere, then re-read to see whether it was open, the same row was
    # read three times for one refusal; one lookup by its ID decides all three outcomes.
    user = setup["member"].user
    second = MembershipFactory(user=user, role=Membership.Role.MEMBER).organization
    notification = _notification_of(second, setup)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("upgrade"), {"notification": notification.code})
    (message,) = _messages(response)
    assert f"is for {second.name}" in message
    assert _notification_reads(captured) == 1
    with CaptureQueriesContext(connection) as captured:
        response = step(client, "notification", {"notification_id": notification.code})
    assert f"is for {second.name}" in errors(response)
    assert _notification_reads(captured) == 1
    assert not FailedCodeAttempt.objects.exists()
