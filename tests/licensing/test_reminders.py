"""Maintenance reminders: thresholds, one digest per contact, never the same reminder twice."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.db import connections
from django.utils import timezone

from licensing.models import License, MaintenanceReminder
from licensing.services import IssueSource, license_issue, license_renew
from licensing.services.reminders import THRESHOLDS, maintenance_reminders_send
from licensing.tasks import send_maintenance_reminders
from portal.models import AuditEvent
from tests.conftest import postgres_only
from tests.licensing.factories import ProductVersionFactory, SupportRegistrationFactory
from tests.portal.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 2)
CONTACT = "tiago@customer.example"


def _license(
    *,
    days: int,
    email: str = CONTACT,
    owner: Any = None,  # an Organization; Any because factories are typed as themselves
    version: Any = None,
    quantity: int = 5,
    today: date = TODAY,
) -> License:
    owner = owner or OrganizationFactory()
    version = version or ProductVersionFactory()
    registration: Any = SupportRegistrationFactory(organization=owner, technical_email=email)
    end = today + timedelta(days=days)
    return license_issue(
        source=IssueSource(
            kind="serial",
            ref="t",
            version=version,
            quantity=quantity,
            maintenance_start=end - timedelta(days=365),
            maintenance_end=end,
        ),
        owner=owner,
        registration=registration,
        acting_user=None,
        notify=False,
    )


@pytest.fixture
def send(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Runs the service for a day, sends its emails, and returns the digests it sent."""

    def run(today: date = TODAY) -> list[mail.EmailMessage]:
        before = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            count = maintenance_reminders_send(today=today)
        sent = mail.outbox[before:]
        assert count == len(sent)
        return sent

    return run


def _reminders(license: License) -> list[tuple[int, date, str]]:
    return list(
        MaintenanceReminder.objects.filter(license=license)
        .order_by("-days_before")
        .values_list("days_before", "maintenance_end", "email")
    )


# ---------------------------------------------------------------------------------------------
# Thresholds


@pytest.mark.parametrize(
    ("days", "threshold"),
    [(91, None), (90, 90), (31, 90), (30, 30), (29, 30), (8, 30), (7, 7), (5, 7), (0, 7)],
)
def test_a_license_gets_the_smallest_threshold_it_crossed(send, days, threshold) -> None:  # type: ignore[no-untyped-def]
    license = _license(days=days)
    sent = send()
    if threshold is None:
        assert sent == [] and _reminders(license) == []
    else:
        assert len(sent) == 1 and sent[0].to == [CONTACT]
        # A license first seen 5 days out gets the 7-day reminder only, never three.
        assert _reminders(license) == [(threshold, license.maintenance_end, CONTACT)]


def test_expired_yesterday_is_not_reminded(send) -> None:  # type: ignore[no-untyped-def]
    license = _license(days=-1)
    assert send() == []
    assert _reminders(license) == []


def test_superseded_and_revoked_licenses_are_skipped(send) -> None:  # type: ignore[no-untyped-def]
    superseded, revoked = _license(days=7), _license(days=7)
    License.objects.filter(pk=superseded.pk).update(status=License.Status.SUPERSEDED)
    License.objects.filter(pk=revoked.pk).update(status=License.Status.REVOKED)
    assert send() == []
    assert not MaintenanceReminder.objects.exists()


def test_enterprise_flexible_keys_are_not_told_to_renew(send) -> None:  # type: ignore[no-untyped-def]
    # Their maintenance follows the contract; a renewal serial is refused for them.
    drawn = _license(days=7)
    License.objects.filter(pk=drawn.pk).update(source=License.Source.EF_DRAWDOWN)
    assert send() == []
    assert not MaintenanceReminder.objects.exists()


def test_thresholds_are_90_30_and_7() -> None:
    assert THRESHOLDS == (90, 30, 7)


# ---------------------------------------------------------------------------------------------
# Digests


def test_one_digest_per_contact_across_organizations(send) -> None:  # type: ignore[no-untyped-def]
    first, second = OrganizationFactory(name="Acme Ltda"), OrganizationFactory(name="Beta SA")
    shared = [
        _license(days=80, owner=first),
        _license(days=6, owner=first),
        # The same contact, spelt differently on another organization's registration.
        _license(days=25, owner=second, email="Tiago@Customer.EXAMPLE"),
    ]
    other = _license(days=60, owner=second, email="rita@beta.example")
    sent = send()
    assert sorted(tuple(email.to) for email in sent) == [("rita@beta.example",), (CONTACT,)]
    digest = next(email for email in sent if email.to == [CONTACT])
    # Listed by maintenance end: 6, 25 then 80 days.
    names = [lic.version.product.name for lic in sorted(shared, key=lambda x: x.maintenance_end)]
    positions = [digest.body.index(name) for name in names]
    assert positions == sorted(positions)
    assert "Acme Ltda" in digest.body and "Beta SA" in digest.body
    assert other.key not in digest.body
    assert MaintenanceReminder.objects.filter(email=CONTACT).count() == 3


def test_digest_content(send) -> None:  # type: ignore[no-untyped-def]
    owner = OrganizationFactory(name="Acme Ltda")
    MembershipFactory(organization=owner, user__email=CONTACT)  # a member: the links open
    soon = _license(days=7, owner=owner, quantity=25)
    later = _license(days=1, owner=owner)
    (email,) = send()
    assert email.subject == "[Licensing Portal] Maintenance ends soon for 2 licenses"
    html = email.alternatives[0][0]
    for body in (email.body, html):
        for license in (soon, later):
            assert license.version.product.name in body
            assert license.version.version in body
            assert license.key in body
            assert license.maintenance_end.isoformat() in body
            assert f"http://testserver/licenses/{license.pk}/" in body
        assert "http://testserver/licenses/" in body
        assert "Acme Ltda" in body
        assert "7 days left" in body and "1 day left" in body
        assert "Tiago Tech" in body
    assert '<html lang="en">' in html


def test_licenses_a_contact_cannot_open_say_where_to_find_them_instead_of_a_link(send) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = OrganizationFactory(name="Acme Ltda"), OrganizationFactory(name="Beta SA")
    MembershipFactory(organization=ours, user__email=CONTACT, user__language="pt-br")
    member = _license(days=7, owner=ours)
    outside = _license(days=6, owner=theirs)  # Tiago is its contact, not a member of Beta
    (email,) = send()
    html = email.alternatives[0][0]
    assert "Manutenção" in email.body  # the contact's own language
    for body in (email.body, html):
        assert f"http://testserver/licenses/{member.pk}/" in body
        assert f"/licenses/{outside.pk}/" not in body
        assert outside.key in body
        assert "Membros de Beta SA encontram as licenças dela em Gerenciar minhas" in body
        assert "Membros de Acme Ltda" not in body


def test_a_contact_without_an_account_gets_no_links(send) -> None:  # type: ignore[no-untyped-def]
    license = _license(days=7, owner=OrganizationFactory(name="Acme Ltda"))
    (email,) = send()
    html = email.alternatives[0][0]
    for body in (email.body, html):
        assert license.key in body and "/licenses/" not in body
        assert "Members of Acme Ltda find its licenses" in body


def test_single_license_subject_and_last_day(send) -> None:  # type: ignore[no-untyped-def]
    _license(days=0)
    (email,) = send()
    assert email.subject == "[Licensing Portal] Maintenance ends soon for 1 license"
    assert "ends today" in email.body


def test_one_audit_event_per_run(send) -> None:  # type: ignore[no-untyped-def]
    _license(days=7)
    _license(days=30)
    _license(days=30, email="rita@beta.example")
    send()
    send()
    events = list(
        AuditEvent.objects.filter(action="maintenance.reminders_sent").order_by("created_at")
    )
    assert [e.details for e in events] == [
        {"date": TODAY.isoformat(), "digests": 2, "licenses": 3},
        {"date": TODAY.isoformat(), "digests": 0, "licenses": 0},
    ]


# ---------------------------------------------------------------------------------------------
# Never the same reminder twice


def test_running_twice_the_same_day_sends_nothing_new(send) -> None:  # type: ignore[no-untyped-def]
    _license(days=7)
    _license(days=60)
    assert len(send()) == 1
    assert send() == []
    assert MaintenanceReminder.objects.count() == 2


def test_next_day_sends_only_when_a_new_threshold_is_crossed(send) -> None:  # type: ignore[no-untyped-def]
    license = _license(days=31)
    assert len(send(TODAY)) == 1  # 90-day reminder
    assert send(TODAY + timedelta(days=1)) != []  # now 30 days left: the 30-day one
    assert send(TODAY + timedelta(days=2)) == []  # 29 days: still the 30-day threshold
    end = license.maintenance_end
    assert _reminders(license) == [(90, end, CONTACT), (30, end, CONTACT)]


def test_a_missed_day_is_caught_up(send) -> None:  # type: ignore[no-untyped-def]
    license = _license(days=8)
    # The scheduler did not run on the day the license crossed 7 days.
    assert len(send(TODAY + timedelta(days=2))) == 1
    assert _reminders(license) == [(7, license.maintenance_end, CONTACT)]


def test_a_renewed_license_is_reminded_again(send) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    license = _license(days=7, today=today)
    assert len(send(today)) == 1
    renewed = license_renew(
        license=license, months=12, registration=None, acting_user=None, reference="R-1"
    )
    assert send(today) == []
    (email,) = send(renewed.maintenance_end - timedelta(days=90))
    assert renewed.maintenance_end.isoformat() in email.body
    assert _reminders(license) == [
        (90, renewed.maintenance_end, CONTACT),
        (7, today + timedelta(days=7), CONTACT),
    ]


def test_a_new_technical_contact_gets_the_reminder(send) -> None:  # type: ignore[no-untyped-def]
    license = _license(days=7)
    send()
    license.registration.technical_email = "new@customer.example"
    license.registration.save()
    (email,) = send()
    assert email.to == ["new@customer.example"]


# ---------------------------------------------------------------------------------------------
# Queries, the task and its schedule


@pytest.mark.parametrize("licenses", [5, 50])
def test_query_count_does_not_grow_with_licenses(
    licenses,
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,  # type: ignore[no-untyped-def]
) -> None:
    version = ProductVersionFactory()
    owners = [OrganizationFactory(), OrganizationFactory()]
    for n in range(licenses):
        # Two contacts, each with licenses across both thresholds and organizations.
        _license(
            days=7 if n % 3 else 60,
            owner=owners[n % 2],
            version=version,
            email=CONTACT if n % 2 else "rita@beta.example",
        )
    # One query more than before for the contacts' languages, whatever their number.
    with django_capture_on_commit_callbacks(execute=False), django_assert_max_num_queries(11):
        assert maintenance_reminders_send(today=TODAY) == 2
    assert MaintenanceReminder.objects.count() == licenses


def test_the_task_reminds_as_of_today(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    _license(days=7, today=timezone.localdate())
    with django_capture_on_commit_callbacks(execute=True):
        assert send_maintenance_reminders.delay().get() == 1
    assert len(mail.outbox) == 1


def test_beat_schedule_points_to_a_registered_task() -> None:
    from portal.celery import app

    app.loader.import_default_modules()
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert "relay-outbox" in schedule
    entry = schedule["maintenance-reminders"]
    assert entry["task"] == "licensing.tasks.send_maintenance_reminders"
    assert entry["task"] in app.tasks
    assert entry["schedule"] == crontab(hour=6, minute=0)


# ---------------------------------------------------------------------------------------------
# Two runs at once (PostgreSQL locks)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only()
def test_runs_at_once_send_each_digest_once() -> None:
    for n in range(12):
        _license(days=7 if n % 2 else 45, email=f"contact{n % 3}@customer.example")
    runs = 4
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(runs)

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            count = maintenance_reminders_send(today=TODAY)
            with lock:
                results.append(count)
        except BaseException as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    # Whichever run came first sent all three digests, whole; the others found nothing to send.
    assert sorted(results) == [0, 0, 0, 3]
    assert sorted(email.to[0] for email in mail.outbox) == [
        f"contact{n}@customer.example" for n in range(3)
    ]
    assert MaintenanceReminder.objects.count() == 12
