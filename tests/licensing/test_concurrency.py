"""Concurrent redemptions on PostgreSQL: one serial never yields two licenses."""

from __future__ import annotations

import threading
from collections import Counter
from functools import partial

import pytest
from django.db import connection, connections

from licensing.models import License, SerialNumber
from licensing.services import LicensingError, SerialAlreadyRedeemed, serial_redeem
from tests.concurrency import run_concurrently
from tests.conftest import postgres_only
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.portal.factories import MembershipFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, postgres_only()]

THREADS = 20


def _race(code: str, memberships: list) -> Counter:  # type: ignore[type-arg]
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(len(memberships))

    def redeem(membership) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait(timeout=30)
            serial_redeem(
                code=code,
                organization=membership.organization,
                registration=REGISTRATION,
                acting_user=membership.user,
            )
            outcome = "issued"
        except SerialAlreadyRedeemed:
            outcome = "already-yours"
        except LicensingError:
            outcome = "refused"
        finally:
            connections.close_all()
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=redeem, args=(m,)) for m in memberships]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_twenty_organizations_race_for_one_serial() -> None:
    assert connection.vendor == "postgresql"
    serial = SerialNumberFactory()
    memberships = [MembershipFactory() for _ in range(THREADS)]
    outcomes = _race(serial.code, memberships)
    assert outcomes == Counter({"issued": 1, "refused": THREADS - 1})
    assert License.objects.count() == 1
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.REDEEMED
    assert serial.license == License.objects.get()
    assert serial.redeemed_by == License.objects.get().owner


def test_one_organization_double_submitting_gets_one_license() -> None:
    serial = SerialNumberFactory()
    membership = MembershipFactory()
    outcomes = _race(serial.code, [membership] * THREADS)
    assert outcomes == Counter({"issued": 1, "already-yours": THREADS - 1})
    assert License.objects.count() == 1


def test_upgrade_serials_for_part_of_one_license_at_once_count_every_seat_once() -> None:
    # Five 2-seat upgrade serials applied at once to one 10-seat license: each takes its seats
    # from what the one before left (the license row is locked and read again), so the last
    # one, for the last 2 seats, replaces what is left and nothing is counted twice.
    from datetime import timedelta

    from django.utils import timezone

    from licensing.services import IssueSource, license_issue
    from tests.licensing.factories import ProductVersionFactory, SupportRegistrationFactory

    membership = MembershipFactory()
    old = ProductVersionFactory(version="14.3")
    new = ProductVersionFactory(product=old.product, version="15.0")
    today = timezone.localdate()
    license = license_issue(
        source=IssueSource(
            kind="serial", ref="seed", version=old, quantity=10,
            maintenance_start=today, maintenance_end=today + timedelta(days=300),
        ),
        owner=membership.organization,
        registration=SupportRegistrationFactory(organization=membership.organization),
        acting_user=membership.user,
        notify=False,
    )  # fmt: skip
    serials = [
        SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=2)
        for _ in range(5)
    ]
    barrier = threading.Barrier(len(serials))
    errors: list[Exception] = []

    def upgrade(serial: SerialNumber) -> None:
        try:
            barrier.wait(timeout=30)
            serial_redeem(
                code=serial.code,
                organization=membership.organization,
                registration=REGISTRATION,
                acting_user=membership.user,
                target_license_id=str(license.pk),
            )
        except Exception as exc:  # any failure fails the test below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=upgrade, args=(s,)) for s in serials]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    license.refresh_from_db()
    assert license.status == License.Status.SUPERSEDED and license.quantity == 2
    upgraded = License.objects.filter(version=new)
    assert upgraded.count() == 5 and sum(upgraded.values_list("quantity", flat=True)) == 10


def test_email_again_waiting_for_a_rehost_sends_the_new_key() -> None:
    # "Email key again" read the license (the view), then waited for the row lock a colleague's
    # rehost held. When the rehost committed, the email went out built from the copy read
    # before: the key the rehost had just revoked, as "Here is your license key".
    import time

    from django.db import transaction

    from licensing.services import license_email_again, license_rehost
    from portal.models import OutboundEmail
    from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory

    membership = MembershipFactory()
    version = ProductVersionFactory(product=ProductFactory(node_locked=True, rehost_limit=3))
    license = LicenseFactory(owner=membership.organization, version=version, host_id="HOST-A")
    read_by_the_view = License.objects.get(pk=license.pk)
    outcome: dict[str, object] = {}

    def email_again() -> None:
        try:
            outcome["to"] = license_email_again(license=read_by_the_view, actor=membership.user)
        except Exception as exc:  # reported below
            outcome["error"] = exc
        finally:
            connections.close_all()

    with transaction.atomic():
        moved = license_rehost(license=license, host_id="HOST-B", actor=membership.user)
        thread = threading.Thread(target=email_again)
        thread.start()
        # Until the other request waits for the row lock (pg_locks: pg_stat_activity would
        # be read once per transaction).
        with connection.cursor() as cursor:
            for _ in range(300):
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the email request never waited for the license's row lock")
    thread.join(timeout=60)
    assert "error" not in outcome, outcome
    # One body with the page's link, one without for a technical contact who may be no member.
    emails = OutboundEmail.objects.filter(template="license_issued")
    assert emails.count() == 2
    for email in emails:
        assert moved.key in email.body_text and "HOST-B" in email.body_text
        assert read_by_the_view.key not in email.body_text


def test_email_again_for_many_licenses_of_one_contact_at_once_stops_at_its_limit(
    settings,
) -> None:  # type: ignore[no-untyped-def]
    # Each license's row lock serialises its own requests only: requests for different licenses
    # that name one technical contact each counted the others' emails as unsent, and all went.
    from licensing.services import license_email_again
    from portal.models import AuditEvent
    from tests.licensing.factories import LicenseFactory

    settings.PORTAL_KEY_EMAILS_PER_ADDRESS_PER_HOUR = 3
    membership = MembershipFactory()
    licenses = [LicenseFactory(owner=membership.organization) for _ in range(10)]
    results = run_concurrently(
        [
            partial(license_email_again, license=license, actor=membership.user)
            for license in licenses
        ]
    )
    assert all(isinstance(r, list | LicensingError) for r in results), results
    outcomes = Counter("refused" if isinstance(r, LicensingError) else "sent" for r in results)
    assert outcomes == Counter({"sent": 3, "refused": 7})
    assert AuditEvent.objects.filter(action="license.emailed").count() == 3


def test_email_again_for_many_licenses_copying_one_administrator_at_once_stops_at_its_limit(
    settings,
) -> None:  # type: ignore[no-untyped-def]
    # The copied administrator's address is locked as the technical contact's is: ten requests
    # for ten licenses a partner obtained, each naming another contact, send it three copies.
    from licensing.services import license_email_again
    from portal.models import AuditEvent
    from tests.licensing.factories import partner_obtained_licenses

    settings.PORTAL_KEY_EMAILS_PER_ADDRESS_PER_HOUR = 3
    obtained = partner_obtained_licenses(10)
    member, licenses = obtained.member, obtained.licenses
    results = run_concurrently(
        [partial(license_email_again, license=license, actor=member) for license in licenses]
    )
    assert all(isinstance(r, list | LicensingError) for r in results), results
    outcomes = Counter("refused" if isinstance(r, LicensingError) else "sent" for r in results)
    assert outcomes == Counter({"sent": 3, "refused": 7})
    assert AuditEvent.objects.filter(action="license.emailed").count() == 3


def test_a_double_click_on_renew_renews_once_and_both_replies_land_on_the_license() -> None:
    # Two POSTs of the license page's Renew with one serial: the second waited for the serial's
    # row lock, then answered 400 "Your organization already redeemed this serial number." and
    # counted a failed code; the browser showed that reply, not the renewal.
    from django.test import Client
    from django.urls import reverse

    from licensing.models import add_months
    from portal.models import AuditEvent, FailedCodeAttempt
    from tests.licensing.factories import LicenseFactory

    membership = MembershipFactory(user__password=None)
    license = LicenseFactory(owner=membership.organization)
    serial = SerialNumberFactory(version=license.version, kind="renewal", maintenance_months=12)
    url = reverse("license-renew", kwargs={"pk": license.pk})
    clients = []
    for _ in range(4):
        client = Client()
        client.force_login(membership.user)
        clients.append(client)
    responses = run_concurrently(
        [lambda c=c: c.post(url, {"serial": serial.code}) for c in clients]
    )
    errors = [r for r in responses if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    detail = reverse("license-detail", kwargs={"pk": license.pk})
    assert [(r.status_code, r["Location"]) for r in responses] == [(302, detail)] * 4
    old_end = license.maintenance_end
    license.refresh_from_db()
    assert license.maintenance_end == add_months(old_end, 12)
    assert AuditEvent.objects.filter(action="license.renewed").count() == 1
    assert not FailedCodeAttempt.objects.exists()
