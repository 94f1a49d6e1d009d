"""`manage.py seed_bench` builds the bench data set and keeps every invariant."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from licensing.models import CustomFieldValue, License, LicenseShare, SerialNumber
from portal.invariants import invariants_check
from portal.models import AuditEvent, User
from upgrades.models import UpgradeNotification
from vouchers.models import Voucher

pytestmark = pytest.mark.django_db


def test_seed_bench_builds_a_consistent_data_set_once() -> None:
    call_command("seed_bench", scale=60, load_orgs=2, serials=5, vouchers=4, stdout=StringIO())
    large = User.objects.get(email="bench-large@bench.example")
    assert large.check_password("bench-password-2026")
    assert License.objects.filter(owner__name="Bench Large Corp").count() == 60
    assert License.objects.filter(owner__name="Bench Small Ltd").count() == 60
    assert AuditEvent.objects.filter(action="license.issued").count() == License.objects.count()
    assert CustomFieldValue.objects.exists() and LicenseShare.objects.count() == 6
    assert SerialNumber.objects.filter(status="open").count() == 5
    assert Voucher.objects.count() == 4
    assert UpgradeNotification.objects.count() == 2
    assert list(invariants_check()) == []

    out = StringIO()
    call_command("seed_bench", scale=60, stdout=out)
    assert "already here" in out.getvalue()
    assert License.objects.filter(owner__name="Bench Large Corp").count() == 60


def test_reset_refuses_a_database_that_is_not_a_bench_one(settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="portal_bench"):
        call_command("seed_bench", scale=1, reset=True, stdout=StringIO())
