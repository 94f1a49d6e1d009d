"""Concurrent drawdowns on PostgreSQL: a line without overage is never drawn down beyond its
commitment (row lock on the line, and a CHECK constraint beneath it), and its drawn-down
figure always equals the sum of its drawdowns."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.test import Client

from enterprise_flex.models import EFDrawdown, EFLine, EFReminder
from enterprise_flex.services import (
    DrawdownRefused,
    DrawdownRequest,
    drawdown_create,
    reminders_send,
)
from licensing.models import License
from portal.models import OutboundEmail
from tests.concurrency import run_concurrently
from tests.conftest import postgres_only
from tests.enterprise_flex.factories import (
    EFContractFactory,
    EFLineFactory,
    contract_member,
    draw_down,
    make_world,
    post_step,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, postgres_only()]

THREADS = 20


def assert_line_consistent(line: EFLine) -> None:
    line.refresh_from_db()
    total = EFDrawdown.objects.filter(line=line).aggregate(total=Sum("quantity"))["total"] or 0
    assert line.drawn_quantity == total
    licensed = License.objects.filter(ef_drawdown__line=line).aggregate(q=Sum("quantity"))["q"]
    assert (licensed or 0) == total
    if not line.overage_allowed:
        assert line.drawn_quantity <= line.committed_quantity


def test_twenty_confirmations_through_the_wizard_never_overdraw_the_line() -> None:
    assert connection.vendor == "postgresql"
    world = make_world(committed_quantity=12)
    users = [contract_member(world.contract, "contract") for _ in range(THREADS)]
    clients = []
    for user in users:
        client = Client()
        client.force_login(user)
        # Each walks to the confirm step while 12 are left: every one is shown as possible.
        response = draw_down(
            client, world.contract, line=world.line, site=world.site, quantity=1, confirm=False
        )
        assert response.context["wizard"]["steps"].current == "confirm"
        clients.append(client)

    responses = run_concurrently(
        [lambda c=c: post_step(c, world.contract, "confirm") for c in clients]
    )
    errors = [r for r in responses if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert all(r.status_code == 302 for r in responses)
    outcomes = Counter("drawn" if "/drawdowns/" in r["Location"] else "refused" for r in responses)
    assert outcomes == Counter({"drawn": 12, "refused": THREADS - 12})
    assert_line_consistent(world.line)
    assert world.line.drawn_quantity == 12
    assert EFDrawdown.objects.count() == License.objects.count() == 12


def test_twenty_services_calls_of_mixed_quantities_fill_the_line_exactly_to_its_commitment() -> (
    None
):
    world = make_world(committed_quantity=25)
    quantities = [1, 2, 3, 4] * 5  # 50 asked for, 25 committed

    def job(quantity: int, index: int) -> Any:
        try:
            return drawdown_create(
                contract=world.contract,
                request=DrawdownRequest(
                    line_id=world.line.pk, site_id=world.site.pk, quantity=quantity
                ),
                actor=world.contract_user,
                token=f"race-{index}",
            ).quantity
        except DrawdownRefused:
            return "refused"

    results = run_concurrently([lambda q=q, i=i: job(q, i) for i, q in enumerate(quantities)])
    assert not [r for r in results if isinstance(r, BaseException)], results
    drawn = sum(r for r in results if isinstance(r, int))
    assert_line_consistent(world.line)
    assert world.line.drawn_quantity == drawn <= 25
    # Whatever is left is smaller than every refused request (each was refused for a reason).
    left = 25 - drawn
    refused = [q for q, r in zip(quantities, results, strict=True) if r == "refused"]
    assert all(q > left for q in refused)


def test_with_overage_every_drawdown_goes_through_and_overage_adds_up() -> None:
    world = make_world(committed_quantity=10, overage_allowed=True)
    results = run_concurrently(
        [
            lambda i=i: drawdown_create(
                contract=world.contract,
                request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=1),
                actor=world.contract_user,
                token=f"over-{i}",
            )
            for i in range(THREADS)
        ]
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert_line_consistent(world.line)
    assert world.line.drawn_quantity == THREADS
    overage = EFDrawdown.objects.aggregate(total=Sum("overage_quantity"))["total"]
    assert overage == world.line.overage_quantity == THREADS - 10


def test_the_check_constraint_alone_stops_unlocked_writers() -> None:
    # Writers that skip the service (no lock, no check) still cannot overdraw: the database
    # refuses every increment that would pass the commitment.
    line = EFLineFactory(contract=EFContractFactory(), committed_quantity=7)

    def increment() -> str:
        try:
            with transaction.atomic():
                EFLine.objects.filter(pk=line.pk).update(drawn_quantity=F("drawn_quantity") + 1)
            return "ok"
        except IntegrityError:
            return "refused"

    results = run_concurrently([increment for _ in range(THREADS)])
    assert Counter(results) == Counter({"ok": 7, "refused": THREADS - 7})
    line.refresh_from_db()
    assert line.drawn_quantity == 7


def test_two_reminder_runs_at_once_send_each_reminder_once() -> None:
    contract = EFContractFactory(period_start=date(2026, 1, 1), period_end=date(2027, 12, 31))
    contract_member(contract, "super")
    results = run_concurrently([lambda: reminders_send(today=date(2026, 11, 15))] * 4)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(results) == [0, 0, 0, 1]
    assert EFReminder.objects.count() == 1
    assert OutboundEmail.objects.filter(template="ef_reminder").count() == 1
