"""Concurrent redemptions on PostgreSQL: one serial never yields two licenses."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from licensing.models import License, SerialNumber
from licensing.services import LicensingError, SerialAlreadyRedeemed, serial_redeem
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
