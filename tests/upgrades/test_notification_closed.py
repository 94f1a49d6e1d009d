"""An organization's own notification ID that was used up or expired is genuine: typed or
opened from the email's link, it says what happened to it (when it was used, for which new
license, or when it expired) with where to look next, and spends no failed attempt. Before, it
read "There is no open upgrade notification with this ID…" and counted against the budget.
Other organizations' closed IDs still read as unknown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.models import FailedCodeAttempt
from portal.policy import Scope
from tests.licensing.wizard import instance_token
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory
from tests.upgrades.test_notification_elsewhere import _notification_of
from tests.upgrades.test_wizard import PREFIX, current, errors, step, walk
from upgrades.models import UpgradeLine, UpgradeRedemption

pytestmark = pytest.mark.django_db

REFUSED = "There is no open upgrade notification with this ID"
NOT_OPEN = "This upgrade notification is not open for your organization"


def _used_up(client, setup) -> UpgradeRedemption:  # type: ignore[no-untyped-def]
    walk(client, setup, quantity=10)  # all ten seats: nothing is left on the only line
    return UpgradeRedemption.objects.get()


def test_typing_a_used_up_id_says_when_and_for_which_license(client, setup) -> None:  # type: ignore[no-untyped-def]
    redemption = _used_up(client, setup)
    client.get(reverse("upgrade"))

    response = step(client, "notification", {"notification_id": setup["notification"].code})

    assert current(response) == "notification"
    message = errors(response)
    assert "Your organization already used this upgrade notification" in message
    assert redemption.license.key[-5:] in message and REFUSED not in message
    page = response.content.decode()
    assert reverse("license-detail", args=[redemption.license.pk]) in page
    assert reverse("upgrade-notification", args=[setup["notification"].pk]) in page
    assert reverse("upgrades-pending") in page
    assert not FailedCodeAttempt.objects.exists()


def test_the_email_link_of_a_used_up_notification_says_so(client, setup) -> None:  # type: ignore[no-untyped-def]
    _used_up(client, setup)

    response = client.get(reverse("upgrade"), {"notification": setup["notification"].code})

    page = response.content.decode()
    assert current(response) == "notification"
    assert "Your organization already used this upgrade notification" in page
    assert NOT_OPEN not in page
    assert not FailedCodeAttempt.objects.exists()


def test_an_expired_notification_says_when_it_expired(client, setup) -> None:  # type: ignore[no-untyped-def]
    notification = setup["notification"]
    notification.expires_on = timezone.localdate() - timedelta(days=3)
    notification.save(update_fields=["expires_on"])
    client.get(reverse("upgrade"))

    typed = step(client, "notification", {"notification_id": notification.code})
    linked = client.get(reverse("upgrade"), {"notification": notification.code})

    assert "This upgrade notification expired on" in errors(typed)
    assert "This upgrade notification expired on" in linked.content.decode()
    assert not FailedCodeAttempt.objects.exists()


def test_a_notification_used_up_otherwise_says_nothing_is_left(client, setup) -> None:  # type: ignore[no-untyped-def]
    UpgradeLine.objects.update(remaining_quantity=0)  # e.g. upgraded with a serial instead
    client.get(reverse("upgrade"))
    response = step(client, "notification", {"notification_id": setup["notification"].code})
    assert "Nothing is left to upgrade with this notification" in errors(response)
    assert not FailedCodeAttempt.objects.exists()


def test_a_partner_that_may_not_view_licenses_sees_no_one_elses_upgrade(client, setup) -> None:  # type: ignore[no-untyped-def]
    redemption = _used_up(client, setup)
    partner = PartnerFactory()
    agent = MembershipFactory(organization=partner).user
    delegation = DelegationFactory(
        partner=partner, customer=setup["member"].organization, scopes=[Scope.OBTAIN_KEYS]
    )
    client.force_login(agent)
    client.post(reverse("partner-act", args=[delegation.pk]))
    client.get(reverse("upgrade"))
    response = step(client, "notification", {"notification_id": setup["notification"].code})
    message = errors(response)
    assert "Nothing is left to upgrade with this notification" in message
    assert redemption.license.key[-5:] not in message
    assert reverse("license-detail", args=[redemption.license.pk]) not in message


def test_another_organizations_closed_id_still_reads_as_unknown(client, setup) -> None:  # type: ignore[no-untyped-def]
    other = _notification_of(MembershipFactory().organization, setup)
    UpgradeLine.objects.filter(notification=other).update(remaining_quantity=0)
    client.get(reverse("upgrade"))
    response = step(client, "notification", {"notification_id": other.code})
    assert REFUSED in errors(response)
    assert "already used" not in errors(response) and "Nothing is left" not in errors(response)
    assert FailedCodeAttempt.objects.count() == 1
    assert instance_token(client, PREFIX)
