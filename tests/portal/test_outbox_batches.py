"""The outbox in batches: many emails claimed by one statement, sent over one connection, each
still claimed once, failed on its own, and taken over when a claim lapses."""

from __future__ import annotations

import smtplib
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connections
from django.utils import timezone

from portal import services
from portal.emails import EmailToQueue, message_id, queue_emails
from portal.models import OutboundEmail
from portal.services import OUTBOX_HANDOFF_GRACE, outbound_emails_send
from portal.tasks import relay_outbox, send_outbound_emails
from tests.conftest import postgres_only
from tests.portal.factories import MembershipFactory


def _queue(count: int) -> list[OutboundEmail]:
    """`count` committed outbox emails that no task has been given yet."""
    membership = MembershipFactory()
    context = {
        "invitation": mock.Mock(token="tok", expires_at=timezone.now()),
        "organization": membership.organization,
        "inviter": membership.user,
    }
    with mock.patch("portal.emails.hand_off_batches"):
        queue_emails(
            emails=[
                EmailToQueue(template="invitation", to=[f"u{i}@example.com"], context=context)
                for i in range(count)
            ]
        )
    return list(OutboundEmail.objects.order_by("created_at"))


def _ids(emails: list[OutboundEmail]) -> list[str]:
    return [str(email.pk) for email in emails]


class CountingBackend(LocmemBackend):
    """The locmem backend, counting the connections a batch opens."""

    opened = 0

    def open(self) -> bool:
        CountingBackend.opened += 1
        return True


@pytest.mark.django_db
def test_a_batch_is_claimed_and_marked_in_two_statements_over_one_connection(
    django_assert_max_num_queries, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = f"{__name__}.CountingBackend"
    CountingBackend.opened = 0
    emails = _queue(30)
    # PostgreSQL: the claim (UPDATE … RETURNING) and the sent mark; SQLite's claim reads first.
    with django_assert_max_num_queries(2 if connections["default"].vendor == "postgresql" else 6):
        outcomes = outbound_emails_send(email_ids=_ids(emails))
    assert outcomes == {"sent": 30, "skipped": 0}
    assert CountingBackend.opened == 1
    assert sorted(m.to[0] for m in mail.outbox) == sorted(e.to[0] for e in emails)
    by_id = {str(e.pk): e for e in emails}
    for sent in mail.outbox:
        pk = sent.extra_headers["Message-ID"].strip("<").partition("@")[0]
        assert sent.to == by_id[pk].to
        assert sent.extra_headers["Message-ID"] == message_id(by_id[pk])
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("sent", 1)}
    # Sent is sent: the same batch again sends nothing.
    assert send_outbound_emails.delay(_ids(emails)).get() == {"skipped": 30}
    assert len(mail.outbox) == 30


@pytest.mark.django_db
def test_a_failing_email_is_retried_alone_and_the_rest_of_the_batch_is_sent(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_EMAIL_RETRY_SECONDS = 60
    emails = _queue(5)
    bad = emails[2]
    real = services.deliver

    def deliver(email: OutboundEmail, **kwargs: Any) -> None:
        if email.pk == bad.pk:
            raise smtplib.SMTPRecipientsRefused({email.to[0]: (550, b"no such user")})
        real(email, **kwargs)

    with mock.patch.object(services, "deliver", deliver):
        outcomes = outbound_emails_send(email_ids=_ids(emails))
    assert outcomes == {"sent": 4, "retry": 1, "skipped": 0}
    assert len(mail.outbox) == 4
    bad.refresh_from_db()
    assert bad.status == OutboundEmail.Status.PENDING and bad.attempts == 1
    assert "no such user" in bad.last_error and bad.lease_expires_at is None
    assert bad.next_attempt_at > timezone.now() + timedelta(seconds=50)  # backed off
    assert OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).count() == 4


@pytest.mark.django_db
def test_a_mail_server_that_is_down_fails_the_batch_once_each_and_raises_nothing(
    settings,
) -> None:  # type: ignore[no-untyped-def]
    emails = _queue(3)
    with mock.patch.object(LocmemBackend, "open", side_effect=ConnectionRefusedError("down")):
        outcomes = outbound_emails_send(email_ids=_ids(emails))
    assert outcomes == {"retry": 3, "skipped": 0} and mail.outbox == []
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("pending", 1)}


class SlowServer:
    """deliver() on a mail server that takes `seconds` per email, on a fake monotonic clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
        self.t = 1000.0
        self.seconds = seconds
        self.real = services.deliver
        monkeypatch.setattr(services.time, "monotonic", lambda: self.t)
        monkeypatch.setattr(services, "deliver", self)

    def __call__(self, email: OutboundEmail, **kwargs: Any) -> None:
        self.real(email, **kwargs)
        self.t += self.seconds


@pytest.mark.django_db
def test_a_slow_batch_renews_its_claim_then_gives_the_rest_back(monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    settings.OUTBOX_BATCH_SECONDS = 30
    emails = _queue(5)
    SlowServer(monkeypatch, seconds=10)
    renew = mock.Mock(wraps=services._outbox_renew)
    monkeypatch.setattr(services, "_outbox_renew", renew)
    with mock.patch.object(services, "hand_off_batches") as hand_off:
        outcomes = outbound_emails_send(email_ids=_ids(emails))
    # 0 s, 10 s, then renewed at 20 s (past half the lease) and sent; at 30 s the batch has
    # had its lease: the last two go back to the outbox and to a new task.
    assert outcomes == {"sent": 3, "released": 2, "skipped": 0}
    assert renew.call_count == 1 and len(mail.outbox) == 3
    released = {str(email.pk) for email in emails[3:]}
    assert {str(pk) for pk in hand_off.call_args.args[0]} == released
    rows = OutboundEmail.objects.filter(pk__in=released)
    assert {(r.status, r.attempts, r.lease_expires_at) for r in rows} == {("pending", 0, None)}
    assert set(
        OutboundEmail.objects.exclude(pk__in=released).values_list("status", "attempts")
    ) == {("sent", 1)}
    assert outbound_emails_send(email_ids=sorted(released)) == {"sent": 2, "skipped": 0}
    assert len(mail.outbox) == 5


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_worker_is_taken_over_once_it_lapses(clock, settings) -> None:  # type: ignore[no-untyped-def]
    settings.OUTBOX_BATCH_SECONDS = 30
    emails = _queue(3)
    clock.advance(seconds=OUTBOX_HANDOFF_GRACE.total_seconds() + 1)
    real = services.deliver
    delivered: list[OutboundEmail] = []

    def dies_after_the_first(email: OutboundEmail, **kwargs: Any) -> None:
        if delivered:
            raise SystemExit("worker killed")  # not an Exception: nothing is recorded
        delivered.append(email)
        real(email, **kwargs)

    with (
        mock.patch.object(services, "deliver", dies_after_the_first),
        mock.patch.object(services, "_outbox_sent_many"),  # died before marking anything
        pytest.raises(SystemExit),
    ):
        outbound_emails_send(email_ids=_ids(emails))
    assert len(mail.outbox) == 1
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {"sending"}
    assert relay_outbox() == 0  # the claim still holds: nobody else sends them meanwhile
    clock.advance(seconds=29)
    assert relay_outbox() == 0
    clock.advance(seconds=2)
    assert relay_outbox() == 3
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("sent", 2)}
    # The one sent before the worker died goes out again with the same Message-ID.
    assert len(mail.outbox) == 4
    ids = Counter(m.extra_headers["Message-ID"] for m in mail.outbox)
    assert ids[message_id(delivered[0])] == 2 and len(ids) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only()
def test_concurrent_batches_never_send_the_same_email_twice(settings) -> None:  # type: ignore[no-untyped-def]
    settings.OUTBOX_BATCH_SIZE = 10
    emails = _queue(40)
    ids = _ids(emails)
    senders = 6
    barrier = threading.Barrier(senders)
    sent: list[str] = []
    outcomes: list[dict[str, int]] = []
    lock = threading.Lock()

    def slow_deliver(email: OutboundEmail, **kwargs: Any) -> None:
        time.sleep(0.01)
        with lock:
            sent.append(str(email.pk))

    def send(offset: int) -> None:
        # Overlapping id lists, as the hand-off, the relay and a redelivered task would give.
        mine = ids[offset:] + ids[:offset]
        try:
            barrier.wait(timeout=30)
            for start in range(0, len(mine), 10):
                outcome = outbound_emails_send(email_ids=mine[start : start + 10])
                with lock:
                    outcomes.append(outcome)
        finally:
            connections.close_all()

    with mock.patch.object(services, "deliver", slow_deliver):
        threads = [threading.Thread(target=send, args=(i * 7,)) for i in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert sorted(sent) == sorted(ids)  # every email once, none twice
    assert sum(o.get("sent", 0) for o in outcomes) == 40
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("sent", 1)}
