"""50 concurrent upgrades against a line with 10 left: never more than 10 granted."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connections
from django.db.models import Sum
from django.utils import timezone

from licensing.models import License
from licensing.services import LicensingError
from tests.conftest import postgres_only
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine, UpgradeRedemption
from upgrades.services import notifications_create, upgrade_redeem

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, postgres_only()]

THREADS = 50


def test_fifty_concurrent_upgrades_never_overspend_a_line() -> None:
    member = MembershipFactory()
    old, new = catalog()
    source = licensed(member.organization, old, quantity=10)
    notifications_create(version=new, today=timezone.localdate())
    line = UpgradeLine.objects.get()
    rng = random.Random(7)
    quantities = [rng.randint(1, 4) for _ in range(THREADS)]
    granted: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def upgrade(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            upgrade_redeem(
                line_id=line.pk,
                quantity=quantities[index],
                organization=member.organization,
                registration=REGISTRATION,
                actor=member.user,
                token=f"token-{index}",
            )
            with lock:
                granted.append(quantities[index])
        except LicensingError:
            with lock:
                refused.append(quantities[index])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=upgrade, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(granted) + len(refused) == THREADS
    line.refresh_from_db()
    source.refresh_from_db()
    assert sum(granted) <= 10
    assert line.remaining_quantity == 10 - sum(granted) >= 0
    # Each success is whole: its license, its redemption and the source's decrease.
    upgraded = License.objects.filter(source="upgrade")
    assert upgraded.count() == len(granted) == UpgradeRedemption.objects.count()
    assert (upgraded.aggregate(total=Sum("quantity"))["total"] or 0) == sum(granted)
    assert source.quantity == 10 - sum(granted)
    assert granted and refused  # some won, the rest were refused cleanly
