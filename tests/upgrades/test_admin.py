"""Staff side of upgrades in admin: a notification's expiry is audited; notices are records."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from portal.models import AuditEvent
from tests.portal.factories import OrganizationFactory, UserFactory
from tests.upgrades.factories import catalog
from upgrades.models import UpgradeNotice, UpgradeNotification

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def notification() -> UpgradeNotification:
    _old, new = catalog()
    return UpgradeNotification.objects.create(
        organization=OrganizationFactory(), target_version=new, expires_on=date(2027, 6, 30)
    )


def test_a_notification_changed_in_admin_is_audited(staff_client, notification) -> None:  # type: ignore[no-untyped-def]
    # Notification 1's expiry set to 2000-01-01 (the customer's right to upgrade ended) left
    # no audit event.
    url = reverse("admin:upgrades_upgradenotification_change", args=[notification.pk])
    form = {
        "expires_on": "2000-01-01",
        "lines-TOTAL_FORMS": "0",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    assert staff_client.post(url, form).status_code == 302
    notification.refresh_from_db()
    assert notification.expires_on == date(2000, 1, 1)
    event = AuditEvent.objects.get(action="upgrade.notification_changed")
    assert event.actor is not None and event.actor.is_staff
    assert event.organization == notification.organization
    assert event.details["code"] == notification.code
    assert event.details["changes"] == {"expires_on": {"from": "2027-06-30", "to": "2000-01-01"}}
    assert staff_client.post(url, form).status_code == 302  # unchanged: nothing to audit
    assert AuditEvent.objects.filter(action="upgrade.notification_changed").count() == 1


def test_an_upgrade_notice_is_read_only(staff_client, notification) -> None:  # type: ignore[no-untyped-def]
    # Every field was editable: the email changed to attacker@evil.example falsified who was
    # notified, unaudited.
    notice = UpgradeNotice.objects.create(notification=notification, email="tech@acme.example")
    url = reverse("admin:upgrades_upgradenotice_change", args=[notice.pk])
    page = staff_client.get(url)
    assert page.status_code == 200 and 'name="email"' not in page.content.decode()
    response = staff_client.post(
        url,
        {
            "notification": notification.pk,
            "email": "attacker@evil.example",
            "queued_at_0": "2026-01-01",
            "queued_at_1": "00:00:00",
        },
    )
    assert response.status_code == 403
    notice.refresh_from_db()
    assert notice.email == "tech@acme.example"
    assert staff_client.get(reverse("admin:upgrades_upgradenotice_changelist")).status_code == 200
