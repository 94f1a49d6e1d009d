"""Reminders to super users: 60 and 30 days before a contract year ends and when its report is
overdue; never twice for the same contract, year and reason, whoever runs the task."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from enterprise_flex.models import EFContract, EFReminder
from enterprise_flex.services import deployment_report_submit, reminders_send
from enterprise_flex.tasks import send_ef_reminders
from licensing.models import add_months
from portal.models import OutboundEmail
from tests.enterprise_flex.factories import EFContractFactory, contract_member

pytestmark = pytest.mark.django_db

START = date(2026, 1, 1)  # year 1: 2026-01-01 to 2026-12-31, year 2 to 2027-12-31


@pytest.fixture
def contract() -> EFContract:
    contract = EFContractFactory(
        period_start=START, period_end=add_months(START, 24) - timedelta(days=1)
    )
    contract.super_users = [  # type: ignore[attr-defined]
        contract_member(contract, "super"),
        contract_member(contract, "super"),
    ]
    contract_member(contract, "configuration")  # not a recipient
    return contract


def sent(contract: EFContract) -> list[tuple[int, str]]:
    return sorted(EFReminder.objects.filter(contract=contract).values_list("year", "reason"))


def test_sixty_then_thirty_days_before_the_year_ends(contract) -> None:  # type: ignore[no-untyped-def]
    year_end = date(2026, 12, 31)
    assert reminders_send(today=year_end - timedelta(days=61)) == 0
    assert reminders_send(today=year_end - timedelta(days=60)) == 1
    assert reminders_send(today=year_end - timedelta(days=45)) == 0  # already sent for 60
    assert reminders_send(today=year_end - timedelta(days=30)) == 1
    assert reminders_send(today=year_end - timedelta(days=1)) == 0
    assert sent(contract) == [(1, "year_end_30"), (1, "year_end_60")]
    emails = list(OutboundEmail.objects.filter(template="ef_reminder").order_by("created_at"))
    assert len(emails) == 2
    supers = sorted(u.email for u in contract.super_users)
    assert all(email.to == supers for email in emails)
    assert "ends in 60 days" in emails[0].subject and "ends in 30 days" in emails[1].subject
    assert f"/enterprise-flex/{contract.number}/reports/1/" in emails[0].body_text


def test_a_year_first_seen_inside_thirty_days_gets_the_thirty_day_reminder_only(contract) -> None:  # type: ignore[no-untyped-def]
    assert reminders_send(today=date(2026, 12, 20)) == 1
    assert sent(contract) == [(1, "year_end_30")]


def test_an_overdue_report_is_reminded_once(contract) -> None:  # type: ignore[no-untyped-def]
    due = date(2026, 12, 31) + timedelta(days=30)
    assert reminders_send(today=due) == 0  # due today: not overdue yet
    assert reminders_send(today=due + timedelta(days=1)) == 1
    assert reminders_send(today=due + timedelta(days=2)) == 0
    assert reminders_send(today=due + timedelta(days=90)) == 0
    assert (1, "report_overdue") in sent(contract)
    email = OutboundEmail.objects.get(subject__contains="overdue")
    assert "was due on 2027-01-30" in email.body_text


def test_a_submitted_report_stops_the_reminders_of_its_year(contract) -> None:  # type: ignore[no-untyped-def]
    deployment_report_submit(
        contract=contract,
        year=1,
        entries={},
        actor=contract.super_users[0],
        today=date(2026, 11, 15),
    )
    assert reminders_send(today=date(2026, 12, 1)) == 0
    assert reminders_send(today=date(2027, 3, 1)) == 0
    assert sent(contract) == []


def test_running_the_task_twice_sends_nothing_twice(contract) -> None:  # type: ignore[no-untyped-def]
    today = date(2026, 11, 15)
    first = reminders_send(today=today)
    second = reminders_send(today=today)
    assert (first, second) == (1, 0)
    assert OutboundEmail.objects.filter(template="ef_reminder").count() == 1


def test_years_and_reasons_are_independent_over_a_whole_contract(contract) -> None:  # type: ignore[no-untyped-def]
    day = START
    while day <= contract.grey_year_end + timedelta(days=30):
        reminders_send(today=day)
        reminders_send(today=day)  # a second run the same day (beat hiccup, manual run)
        day += timedelta(days=1)
    assert Counter(sent(contract)) == Counter(
        [
            (1, "year_end_60"), (1, "year_end_30"), (1, "report_overdue"),
            (2, "year_end_60"), (2, "year_end_30"), (2, "report_overdue"),
        ]
    )  # fmt: skip
    assert OutboundEmail.objects.filter(template="ef_reminder").count() == 6


def test_inactive_contracts_and_contracts_without_super_users_are_skipped(contract) -> None:  # type: ignore[no-untyped-def]
    lonely = EFContractFactory(period_start=START, period_end=date(2026, 12, 31))
    EFContract.objects.filter(pk=contract.pk).update(status="suspended")
    assert reminders_send(today=date(2026, 11, 15)) == 0
    # Kept due: the contract gets its reminder once it has a super user.
    contract_member(lonely, "super")
    assert reminders_send(today=date(2026, 11, 16)) == 1
    assert sent(lonely) == [(1, "year_end_60")]


def test_the_beat_task_runs_the_service(contract, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: date(2026, 11, 15))
    assert send_ef_reminders.delay().get() == 1
    assert send_ef_reminders.delay().get() == 0


def test_the_reminder_is_in_the_beat_schedule(settings) -> None:  # type: ignore[no-untyped-def]
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "enterprise_flex.tasks.send_ef_reminders" in tasks


def test_a_short_last_year_is_not_reminded_before_it_starts() -> None:
    # Year 2 runs 40 days (2027-01-01 to 2027-02-09): 60 days before its end it has not begun,
    # and its report cannot be written yet. It was reminded then, beside year 1's 30 days.
    contract = EFContractFactory(period_start=START, period_end=date(2027, 2, 9))
    contract_member(contract, "super")
    assert reminders_send(today=date(2026, 12, 11)) == 1
    assert sent(contract) == [(1, "year_end_30")]
    assert reminders_send(today=date(2027, 1, 1)) == 1  # its first day: 39 days left
    assert sent(contract) == [(1, "year_end_30"), (2, "year_end_60")]
    email = OutboundEmail.objects.filter(template="ef_reminder").latest("created_at")
    assert "ends in 39 days" in email.subject


@pytest.mark.parametrize(
    ("period_end", "subject", "body"),
    [
        (date(2027, 1, 2), "year 2 ends in 1 day", "in 1 day. Check"),
        (date(2027, 1, 1), "year 2 ends today", "ends today. Check"),
    ],
)
def test_a_reminder_counts_its_days_in_words(period_end, subject, body) -> None:  # type: ignore[no-untyped-def]
    # A last year of two days or one is reminded on its first day: "in 1 days" and "in 0 days"
    # were what the email said.
    contract = EFContractFactory(period_start=START, period_end=period_end)
    contract_member(contract, "super")
    reminders_send(today=date(2026, 12, 31))  # year 1's last day
    assert reminders_send(today=date(2027, 1, 1)) == 1
    email = OutboundEmail.objects.filter(template="ef_reminder").latest("created_at")
    assert subject in email.subject
    assert body in email.body_text and body in email.body_html
