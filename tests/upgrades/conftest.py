"""The upgrade wizard's fixtures: a customer with a 10-seat license and a notification for
it, and (two_releases) a second, newer version's notification for the same license."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.licensing.factories import ProductVersionFactory
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine, UpgradeNotification
from upgrades.services import notifications_create


@pytest.fixture
def setup(client):  # type: ignore[no-untyped-def]
    member = MembershipFactory()
    client.force_login(member.user)
    old, new = catalog()
    source = licensed(member.organization, old, quantity=10, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    notification = UpgradeNotification.objects.get()
    return {
        "member": member,
        "old": old,
        "new": new,
        "source": source,
        "notification": notification,
        "line": UpgradeLine.objects.get(),
    }


@pytest.fixture
def two_releases(setup):  # type: ignore[no-untyped-def]
    """A second version published while the first notification is still open: the source
    license has a line in each notification, each counting all its 10 seats."""
    newer = ProductVersionFactory(
        product=setup["old"].product, version="16.0", released_on=timezone.localdate()
    )
    notifications_create(version=newer, today=timezone.localdate())
    notification = UpgradeNotification.objects.get(target_version=newer)
    return {**setup, "newer": notification, "newer_line": notification.lines.get()}
