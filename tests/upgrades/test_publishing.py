from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from licensing.models import License
from portal.models import AuditEvent, OutboundEmail
from tests.licensing.factories import ProductVersionFactory, SupportRegistrationFactory
from tests.portal.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.upgrades.factories import RELEASE, catalog, licensed
from upgrades import services as upgrade_services
from upgrades.models import UpgradeLine, UpgradeNotice, UpgradeNotification
from upgrades.selectors import publication_preview
from upgrades.services import notifications_create, upgrade_notices_send, version_publish

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


def test_eligibility_rules() -> None:
    old, new = catalog()
    org = OrganizationFactory()
    on_the_day = licensed(org, old, end=RELEASE)
    current = licensed(org, old, end=RELEASE + timedelta(days=1), quantity=3)
    lapsed = licensed(org, old, end=RELEASE - timedelta(days=1))
    already_new = licensed(org, new)
    other_product = licensed(org, ProductVersionFactory(released_on=old.released_on))
    revoked = licensed(org, old)
    License.objects.filter(pk=revoked.pk).update(status="revoked")
    later = ProductVersionFactory(
        product=old.product, version="16.0", released_on=RELEASE + timedelta(days=5)
    )
    licensed(org, later)  # newer than the published version: not an upgrade
    # Maintenance that began on the release date covers it; one that began after does not: a
    # license bought since has the version it bought (FileConnect refuses it the files too).
    begun_that_day = licensed(org, old, maintenance_start=RELEASE)
    bought_since = licensed(org, old, maintenance_start=RELEASE + timedelta(days=1))

    assert publication_preview(version=new).licenses == 3
    created = notifications_create(version=new, today=TODAY)
    assert (created.notifications, created.lines) == (1, 3)
    lines = {line.source_license_id: line for line in UpgradeLine.objects.all()}
    assert set(lines) == {on_the_day.pk, current.pk, begun_that_day.pk}
    assert lines[current.pk].eligible_quantity == lines[current.pk].remaining_quantity == 3
    for excluded in (lapsed, already_new, other_product, revoked, bought_since):
        assert excluded.pk not in lines
    notification = UpgradeNotification.objects.get()
    assert notification.organization == org and notification.target_version == new
    assert notification.expires_on == TODAY + timedelta(days=365)
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", notification.code)


def test_one_notification_per_organization_with_several_lines() -> None:
    old, new = catalog()
    first, second = OrganizationFactory(), OrganizationFactory()
    for _ in range(3):
        licensed(first, old)
    licensed(second, old)
    created = notifications_create(version=new, today=TODAY)
    assert (created.notifications, created.lines) == (2, 4)
    assert UpgradeNotification.objects.get(organization=first).lines.count() == 3


def test_running_again_creates_nothing_new_until_a_license_becomes_eligible() -> None:
    old, new = catalog()
    org = OrganizationFactory()
    licensed(org, old)
    lapsed = licensed(org, old, end=RELEASE - timedelta(days=30))
    notifications_create(version=new, today=TODAY)
    assert notifications_create(version=new, today=TODAY) == type(
        notifications_create(version=new, today=TODAY)
    )(0, 0)
    License.objects.filter(pk=lapsed.pk).update(maintenance_end=TODAY + timedelta(days=365))
    created = notifications_create(version=new, today=TODAY)
    assert (created.notifications, created.lines) == (0, 1)
    assert UpgradeNotification.objects.count() == 1 and UpgradeLine.objects.count() == 2


def test_query_count_does_not_grow_with_licenses(django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    orgs = [OrganizationFactory() for _ in range(5)]
    for index in range(60):
        licensed(orgs[index % 5], old)
    with django_assert_max_num_queries(6):
        created = notifications_create(version=new, today=TODAY)
    assert created.lines == 60


def test_notices_one_per_organization_and_contact_and_never_twice(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    org = OrganizationFactory()
    ops = SupportRegistrationFactory(organization=org, technical_email="ops@acme.example")
    sec = SupportRegistrationFactory(organization=org, technical_email="SEC@acme.example")
    a = licensed(org, old, registration=ops)
    licensed(org, old, registration=ops)
    licensed(org, old, registration=sec)
    notifications_create(version=new, today=TODAY)
    with django_capture_on_commit_callbacks(execute=True):
        assert upgrade_notices_send(version=new) == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["ops@acme.example", "sec@acme.example"]
    ops_mail = next(m for m in mail.outbox if m.to == ["ops@acme.example"])
    notification = UpgradeNotification.objects.get()
    assert notification.code in ops_mail.body and a.key in ops_mail.body
    assert f"/upgrades/?notification={notification.code}" in ops_mail.body
    assert "Endpoint Shield 15.0" in ops_mail.subject
    with django_capture_on_commit_callbacks(execute=True):
        assert upgrade_notices_send(version=new) == 0
    assert len(mail.outbox) == 2 and UpgradeNotice.objects.count() == 2


def test_a_notice_gives_the_last_day_it_can_be_used(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    licensed(OrganizationFactory(), old)
    notifications_create(version=new, today=TODAY)
    notification = UpgradeNotification.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        upgrade_notices_send(version=new)
    (email,) = mail.outbox
    # Still valid on expires_on (is_expired: expires_on < today): "by" that day, not "before".
    assert not notification.is_expired(today=notification.expires_on)
    assert f"Upgrade by {notification.expires_on.isoformat()}." in email.body
    assert "Upgrade before" not in email.body


class _Statements:
    """Counts every statement (an execute wrapper: no cap, unlike Django's query log)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.count += 1
        return execute(sql, params, many, context)


@pytest.mark.parametrize("organizations", [4, 12])
def test_notices_cost_a_constant_number_of_statements_per_batch(
    organizations: int, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(upgrade_services, "NOTICE_BATCH", 5)
    old, new = catalog()
    for _ in range(organizations):
        org = OrganizationFactory()
        licensed(org, old)
        licensed(org, old)
    notifications_create(version=new, today=TODAY)
    statements = _Statements()
    with django_capture_on_commit_callbacks() as handoffs, connection.execute_wrapper(statements):
        assert upgrade_notices_send(version=new) == organizations
    batches = -(-organizations // 5)
    # Three reads (lines, notices already sent, notifications), then per batch: the notices'
    # INSERT, the readers' languages, the outbox rows' INSERT and the savepoint pair of the
    # test's transaction.
    assert statements.count == 3 + 5 * batches
    # One hand-off per batch after commit, carrying one email per organization, all delivered.
    assert len(handoffs) == batches
    assert sum(len(handoff.args[0]) for handoff in handoffs) == organizations
    assert UpgradeNotice.objects.count() == organizations
    assert OutboundEmail.objects.filter(template="upgrade_notice").count() == organizations
    for handoff in handoffs:
        handoff()
    assert len(mail.outbox) == organizations
    assert not OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).exists()


def test_a_notice_queued_meanwhile_gets_no_second_email(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    first, second = OrganizationFactory(), OrganizationFactory()
    licensed(first, old)
    licensed(second, old)
    notifications_create(version=new, today=TODAY)
    line = UpgradeLine.objects.get(notification__organization=first)
    contact = line.source_license.registration.technical_email.lower()
    # Another run (the daily job) queued the first organization's notice after this one read
    # what was sent: the unique constraint skips it, and only the second gets an email.
    real = upgrade_services._notices_insert

    def racing(keys):  # type: ignore[no-untyped-def]
        UpgradeNotice.objects.create(
            notification=UpgradeNotification.objects.get(organization=first), email=contact
        )
        return real(keys)

    with django_capture_on_commit_callbacks(execute=True):
        upgrade_services._notices_insert = racing
        try:
            assert upgrade_notices_send(version=new) == 1
        finally:
            upgrade_services._notices_insert = real
    assert len(mail.outbox) == 1
    assert UpgradeNotice.objects.count() == 2


def test_publish_is_idempotent_and_runs_the_task(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    licensed(OrganizationFactory(), old)
    staff = UserFactory(is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert version_publish(version=new, actor=staff) is True
    assert UpgradeLine.objects.count() == 1 and len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert version_publish(version=new, actor=staff) is False
    assert UpgradeLine.objects.count() == 1 and len(mail.outbox) == 1
    new.refresh_from_db()
    assert new.published_at is not None
    assert AuditEvent.objects.filter(action="version.published").count() == 1


def test_admin_action(client, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    licensed(OrganizationFactory(), old)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:licensing_productversion_changelist")
    action = {"action": "publish_and_notify", "_selected_action": [new.pk]}
    # First a page that says whom the emails will reach; nothing is published yet.
    confirm = client.post(url, action).content.decode()
    assert "1 organization will get an upgrade notification" in confirm
    assert "1 license is eligible for the free upgrade" in confirm
    new.refresh_from_db()
    assert new.published_at is None and not UpgradeNotification.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {**action, "apply": "1"}, follow=True)
    assert "1 version published" in response.content.decode()
    assert UpgradeNotification.objects.count() == 1
    assert "already published: skipped" in client.post(url, action).content.decode()
    response = client.post(url, {**action, "apply": "1"}, follow=True)
    assert "already published" in response.content.decode()
    for name in ("upgradenotification", "upgraderedemption", "upgradenotice"):
        assert client.get(reverse(f"admin:upgrades_{name}_changelist")).status_code == 200
    notification = UpgradeNotification.objects.get()
    delete = reverse("admin:upgrades_upgradenotification_delete", args=[notification.pk])
    assert client.get(delete).status_code == 403
    notification = UpgradeNotification.objects.get()
    assert (
        client.get(
            reverse("admin:upgrades_upgradenotification_change", args=[notification.pk])
        ).status_code
        == 200
    )


def test_license_page_says_renewing_would_not_make_it_eligible(
    client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    member = MembershipFactory()
    lapsed = licensed(member.organization, old, end=RELEASE - timedelta(days=1))
    current = licensed(member.organization, old)
    with django_capture_on_commit_callbacks(execute=True):  # the publication's notifications
        version_publish(version=new, actor=None)
    client.force_login(member.user)
    page = client.get(reverse("license-detail", kwargs={"pk": lapsed.pk})).content.decode()
    # A renewal after the lapse starts a new period (license_renew): it said renewing would
    # make the license eligible, and renewing did, covering the lapse.
    assert "not eligible for the free upgrade" in page
    assert "Renewing now does not change that" in page and "buy an upgrade" in page
    page = client.get(reverse("license-detail", kwargs={"pk": current.pk})).content.decode()
    assert "is available for this license at no cost" in page


def test_license_page_says_a_version_from_before_its_maintenance_is_no_free_upgrade(client) -> None:  # type: ignore[no-untyped-def]
    # It said the license would join Version upgrade the next day; the daily job never adds it.
    from upgrades.tasks import refresh_upgrade_eligibility

    old, new = catalog()
    member = MembershipFactory()
    version_publish(version=new, actor=None)
    bought_since = licensed(member.organization, old, maintenance_start=TODAY)
    refresh_upgrade_eligibility()
    assert not UpgradeLine.objects.filter(source_license=bought_since).exists()
    client.force_login(member.user)
    page = client.get(reverse("license-detail", kwargs={"pk": bought_since.pk})).content.decode()
    assert "before this license's maintenance began, so it is not a free upgrade" in page
    assert "is added to Version upgrade the next day" not in page
    assert "is available for this license at no cost" not in page


def test_license_page_offers_the_free_upgrade_only_once_version_upgrade_does(client) -> None:  # type: ignore[no-untyped-def]
    # A key issued after the version was published joins a notification with the next daily
    # run: until then the page said "available at no cost, see your pending upgrades", and
    # the pending upgrades listed nothing for it.
    from upgrades.tasks import refresh_upgrade_eligibility

    old, new = catalog()
    member = MembershipFactory()
    version_publish(version=new, actor=None)
    later = licensed(member.organization, old)
    client.force_login(member.user)
    url = reverse("license-detail", kwargs={"pk": later.pk})
    page = client.get(url).content.decode()
    assert "is available for this license at no cost" not in page
    assert "No free upgrade to it is open for this license today" in page
    refresh_upgrade_eligibility()
    page = client.get(url).content.decode()
    assert "is available for this license at no cost" in page
    assert "No free upgrade to it is open" not in page
    # Used up: no longer offered.
    UpgradeLine.objects.filter(source_license=later).update(remaining_quantity=0)
    assert "is available for this license at no cost" not in client.get(url).content.decode()
