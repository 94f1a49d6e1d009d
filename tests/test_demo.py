"""`make run` seeds demo data with three commands; each is safe to run again."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from licensing.models import License
from portal.models import Delegation
from upgrades.models import UpgradeNotification
from vouchers.models import Voucher

pytestmark = pytest.mark.django_db


def _seed() -> str:
    out = StringIO()
    for command in ("seed_demo", "seed_demo_vouchers", "seed_demo_upgrades", "seed_demo_partners"):
        call_command(command, stdout=out)
    return out.getvalue()


def test_demo_seed_is_idempotent_and_prints_what_to_try(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        text = _seed()
    counts = (License.objects.count(), Voucher.objects.count(), UpgradeNotification.objects.count())
    with django_capture_on_commit_callbacks(execute=True):
        again = _seed()
    assert (
        (License.objects.count(), Voucher.objects.count(), UpgradeNotification.objects.count())
        == counts
        == (1, 20, 1)
    )
    notification = UpgradeNotification.objects.get()
    assert notification.code in again  # (the first run prints it once its on-commit task ran)
    assert "oem@hardware.example" in text and "Unredeemed demo voucher codes" in text
    assert "pedro@partner.example" in text
    delegation = Delegation.objects.get()
    assert (delegation.customer.name, delegation.partner.name, delegation.status) == (
        "Globex Logistics",
        "Prime Channel Partners",
        "active",
    )
