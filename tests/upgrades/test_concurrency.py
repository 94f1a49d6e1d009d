"""Concurrent upgrades: 50 against a line with 10 left never get more than 10; two partial
upgrades of one license never spend a seat twice."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
from django.db import connections
from django.db.models import Sum
from django.utils import timezone

from licensing.models import License
from licensing.services import LicensingError
from tests.concurrency import run_concurrently
from tests.conftest import postgres_only
from tests.licensing.factories import REGISTRATION, ProductVersionFactory
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


@pytest.mark.parametrize(("first", "second", "both"), [(6, 4, False), (3, 3, True), (7, 5, False)])
def test_two_partial_upgrades_of_one_license_never_spend_a_seat_twice(
    first: int, second: int, both: bool
) -> None:
    """Two sessions each upgrade part of the same 10 seats, to two versions (one notification
    each), each having read 10: a part that has become the whole license, or more than it has,
    is refused; the seats of the new licenses and the old one always add up to 10."""
    member = MembershipFactory()
    old, new = catalog()
    source = licensed(member.organization, old, quantity=10)
    notifications_create(version=new, today=timezone.localdate())
    newer = ProductVersionFactory(
        product=old.product, version="16.0", released_on=timezone.localdate()
    )
    notifications_create(version=newer, today=timezone.localdate())
    lines = [
        UpgradeLine.objects.get(notification__target_version=new),
        UpgradeLine.objects.get(notification__target_version=newer),
    ]

    def upgrade(line: UpgradeLine, quantity: int) -> Callable[[], License]:
        return lambda: upgrade_redeem(
            line_id=line.pk,
            quantity=quantity,
            license_quantity=10,
            organization=member.organization,
            registration=REGISTRATION,
            actor=member.user,
            token=f"token-{line.pk}",
        )

    results = run_concurrently([upgrade(lines[0], first), upgrade(lines[1], second)])
    assert not [r for r in results if not isinstance(r, License | LicensingError)], results
    granted = [r.quantity for r in results if isinstance(r, License)]
    assert len(granted) == (2 if both else 1)
    source.refresh_from_db()
    upgraded = License.objects.filter(source="upgrade")
    assert sorted(upgraded.values_list("quantity", flat=True)) == sorted(granted)
    assert source.quantity + sum(granted) == 10
    # Neither asked for the whole license: it keeps its seats under its key.
    assert source.status == License.Status.ACTIVE and source.quantity > 0
    for line in lines:
        line.refresh_from_db()
    assert sorted(10 - line.remaining_quantity for line in lines) == sorted(
        [*granted, *[0] * (2 - len(granted))]
    )
