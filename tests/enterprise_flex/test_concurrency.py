"""Concurrent drawdowns on PostgreSQL: a line without overage is never drawn down beyond its
commitment (row lock on the line, and a CHECK constraint beneath it), and its drawn-down
figure always equals the sum of its drawdowns. Drawdowns and staff's edits in admin lock the
contract and its lines in one order: they take turns, and never deadlock."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F, Sum
from django.test import Client
from django.urls import reverse

from enterprise_flex import services
from enterprise_flex.models import EFContract, EFContractUser, EFDrawdown, EFLine, EFReminder
from enterprise_flex.services import (
    DrawdownRefused,
    DrawdownRequest,
    EFError,
    contract_user_set,
    drawdown_create,
    reminders_send,
)
from licensing.models import License
from portal.models import AuditEvent, Membership, OutboundEmail, User
from portal.services import PortalError, membership_update
from tests.concurrency import run_concurrently
from tests.conftest import postgres_only
from tests.enterprise_flex.factories import (
    EFContractFactory,
    EFLineFactory,
    admin_change_data,
    contract_member,
    draw_down,
    make_world,
    post_step,
)
from tests.portal.factories import MembershipFactory

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


def test_drawdowns_and_admin_line_edits_at_once_never_deadlock() -> None:
    # A drawdown locked the line and then (inserting its drawdown row) needed the contract,
    # which admin's save had locked first (contract_update) before it waited for the line:
    # "deadlock detected", one side's work lost. Both now take the contract, then the line
    # (services._lock_contract). Drawers and editors each loop, so their transactions keep
    # overlapping in every order, through the very code each uses: the service the wizard
    # calls, and admin's change page (save_model, then the line and site inlines).
    world = make_world(committed_quantity=1000)
    second = EFLineFactory(contract=world.contract, committed_quantity=1000)
    staff = User.objects.create_superuser(email="staff@example.com", password="x")
    url = reverse("admin:enterprise_flex_efcontract_change", args=[world.contract.pk])
    lines = [world.line, second]
    rounds, drawers, editors = 12, 4, 2

    def draw(drawer: int) -> int:
        drawn = 0
        for round_ in range(rounds):
            drawn += drawdown_create(
                contract=world.contract,
                request=DrawdownRequest(
                    line_id=lines[(drawer + round_) % 2].pk, site_id=world.site.pk, quantity=1
                ),
                actor=world.contract_user,
                token=f"mix-{drawer}-{round_}",
            ).quantity
        return drawn

    def edit(editor: int) -> list[int]:
        client = Client()
        client.force_login(staff)
        data = admin_change_data(EFContract.objects.get(pk=world.contract.pk))
        index = {data[f"lines-{i}-id"]: i for i in range(len(lines))}
        statuses = []
        for round_ in range(rounds):
            for n, line in enumerate(lines):
                # Every value is new: each save changes both lines (and is audited so).
                data[f"lines-{index[line.pk]}-committed_quantity"] = str(
                    500 + 100 * n + 50 * editor + round_
                )
            # The site its drawdowns name too (site_update, after the lines).
            data["sites-0-contact_phone"] = f"+1 555 01{editor}{round_:02}"
            statuses.append(client.post(url, data).status_code)
        return statuses

    results = run_concurrently(
        [lambda d=d: draw(d) for d in range(drawers)]
        + [lambda e=e: edit(e) for e in range(editors)]
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert results[:drawers] == [rounds] * drawers
    assert all(statuses == [302] * rounds for statuses in results[drawers:]), results[drawers:]
    for line in lines:
        assert_line_consistent(line)
        # Ended on one editor's last value; every save was audited once per line.
        assert line.committed_quantity in {500 + 100 * lines.index(line) + 50 * e + rounds - 1
                                           for e in range(editors)}  # fmt: skip
        changed = AuditEvent.objects.filter(action="ef.line_changed", object_id=str(line.pk))
        assert changed.count() == editors * rounds
    site_changes = AuditEvent.objects.filter(action="ef.site_changed", object_id=str(world.site.pk))
    assert site_changes.count() == editors * rounds
    assert sum(line.drawn_quantity for line in lines) == drawers * rounds
    assert EFDrawdown.objects.count() == License.objects.count() == drawers * rounds


def _two_super_users() -> tuple[EFContract, User, User, User]:
    """A contract whose only super users are `a` and `b`, and an administrator."""
    contract = EFContractFactory()
    a = contract_member(contract, EFContractUser.Level.SUPER)
    b = contract_member(contract, EFContractUser.Level.SUPER)
    admin = MembershipFactory(organization=contract.organization, role=Membership.Role.ADMIN)
    return contract, a, b, admin.user


def _supers_left(contract: EFContract) -> list[int]:
    return list(
        EFContractUser.objects.filter(
            contract=contract,
            level=EFContractUser.Level.SUPER,
            user__memberships__organization=contract.organization,
        ).values_list("user_id", flat=True)
    )


def _outcome(job: Any) -> Any:
    try:
        job()
    except PortalError as exc:  # EFError is no PortalError: it would be reported as raised
        return str(exc)
    return "done"


@pytest.mark.parametrize("round_", range(3))
def test_two_administrators_removing_the_last_two_super_users_at_once_leave_one(
    round_: int,
) -> None:
    # Each removal alone leaves the other super user; together they left the contract with none.
    contract, a, b, admin = _two_super_users()
    second_admin = MembershipFactory(
        organization=contract.organization, role=Membership.Role.ADMIN
    ).user
    results = run_concurrently(
        [
            lambda: _outcome(
                lambda: membership_update(membership=a.memberships.get(), actor=admin, remove=True)
            ),
            lambda: _outcome(
                lambda: membership_update(
                    membership=b.memberships.get(), actor=second_admin, remove=True
                )
            ),
        ]
    )
    assert sorted(r if r == "done" else "refused" for r in results) == ["done", "refused"], results
    refused = next(r for r in results if r != "done")
    assert "is the last super user of contract" in refused
    assert len(_supers_left(contract)) == 1
    assert Membership.objects.filter(user__in=[a, b]).count() == 1


def test_a_removal_while_the_other_super_user_is_being_demoted_waits_and_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not serialized by the organization's administrator rows: only the contract's super user
    # rows (_lock_super_users) stand between `a` demoting `b` and an administrator removing `a`.
    # The demotion holds them when the removal starts; without that lock both went through.
    contract, a, b, admin = _two_super_users()
    locked = threading.Event()
    lock = services._lock_super_users

    def lock_then_linger(contract: EFContract) -> list[int]:
        supers = lock(contract)
        if threading.current_thread() is not threading.main_thread():
            locked.set()
            time.sleep(1)  # the removal below reaches the lock meanwhile
        return supers

    monkeypatch.setattr(services, "_lock_super_users", lock_then_linger)
    outcome: dict[str, Any] = {}

    def demote() -> None:
        try:
            contract_user_set(
                contract=contract, user=b, level=EFContractUser.Level.CONTRACT, actor=a
            )
            outcome["demotion"] = "done"
        except EFError as exc:
            outcome["demotion"] = str(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=demote)
    thread.start()
    assert locked.wait(timeout=30)
    removal = _outcome(
        lambda: membership_update(membership=a.memberships.get(), actor=admin, remove=True)
    )
    thread.join(timeout=60)
    assert outcome["demotion"] == "done"
    assert removal == (
        f"{a.email} is the last super user of contract {contract.number}. Make another user "
        f"super user of contract {contract.number} first, then remove {a.email}."
    )
    assert _supers_left(contract) == [a.pk]
