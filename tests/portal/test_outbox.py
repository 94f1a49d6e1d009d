"""The email outbox: written with the change, handed to Celery after commit, delivered at least
once with a stable Message-ID, retried with backoff, never given up silently."""

from __future__ import annotations

import smtplib
import threading
import time
from datetime import datetime
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from portal import services
from portal.celery import app as celery_app
from portal.emails import queue_email
from portal.models import AuditEvent, OutboundEmail
from portal.services import OUTBOX_HANDOFF_GRACE, OUTBOX_LEASE, outbound_email_send
from portal.tasks import relay_outbox, send_outbound_email
from tests.conftest import celery_conf, postgres_only, redis_url
from tests.portal.conftest import Clock
from tests.portal.factories import MembershipFactory


def _queue() -> OutboundEmail:
    membership = MembershipFactory()
    return queue_email(
        template="invitation",
        to=["Someone@Example.com ", "someone@example.com"],
        context={
            "invitation": mock.Mock(token="tok", expires_at=timezone.now()),
            "organization": membership.organization,
            "inviter": membership.user,
        },
    )


class FlakySMTP:
    """deliver() that fails `failures` times, then sends; records when it was tried."""

    def __init__(self, clock: Clock, failures: int) -> None:
        self.clock = clock
        self.failures = failures
        self.tried: list[datetime] = []
        self.real = services.deliver

    def __call__(self, email: OutboundEmail, **kwargs: Any) -> None:
        self.tried.append(self.clock.now)
        if len(self.tried) <= self.failures:
            raise smtplib.SMTPServerDisconnected("mail server down")
        self.real(email, **kwargs)  # the relay's batches pass their shared connection


@pytest.mark.django_db
def test_nothing_is_sent_when_the_transaction_rolls_back(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _queue()
        raise RuntimeError("rolled back")
    assert mail.outbox == [] and not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_sent_once_after_commit_with_the_rows_message_id(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        email = _queue()
    assert email.to == ["someone@example.com"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].extra_headers["Message-ID"] == f"<{email.pk}@example.com>"
    assert send_outbound_email.delay(str(email.pk)).get() == "skipped"  # a redelivered task
    assert relay_outbox() == 0
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT and email.attempts == 1


@pytest.mark.django_db
def test_a_broker_down_at_commit_fails_nothing_and_the_relay_sends_later(
    django_capture_on_commit_callbacks, clock
) -> None:  # type: ignore[no-untyped-def]
    with (
        mock.patch.object(send_outbound_email, "delay", side_effect=BrokerDown("broker down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        email = _queue()  # the hand-off raised after commit: no exception reaches the caller
    assert mail.outbox == []
    assert relay_outbox() == 0  # the on-commit hand-off gets its grace period first
    clock.advance(seconds=OUTBOX_HANDOFF_GRACE.total_seconds() + 1)
    assert relay_outbox() == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT and len(mail.outbox) == 1


@pytest.mark.django_db
def test_smtp_failing_three_times_recovers_with_backoff_by_itself(
    django_capture_on_commit_callbacks, clock, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_EMAIL_RETRY_SECONDS = 60
    smtp = FlakySMTP(clock, failures=3)
    start = clock.now
    with mock.patch.object(services, "deliver", smtp):
        with django_capture_on_commit_callbacks(execute=True):
            email = _queue()
        # The relay runs every minute, as beat runs it; nobody touches the row.
        for _minute in range(30):
            clock.advance(minutes=1)
            relay_outbox()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.attempts == 4 and len(mail.outbox) == 1
    # 1, 2 then 4 minutes apart: retries back off instead of spending attempts every minute.
    assert [round((t - start).total_seconds() / 60) for t in smtp.tried] == [0, 1, 3, 7]


@pytest.mark.django_db
def test_a_long_outage_ends_in_failed_loudly_and_staff_resend_it(
    admin_client, django_capture_on_commit_callbacks, clock, settings, caplog
) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_EMAIL_MAX_ATTEMPTS = 3
    smtp = FlakySMTP(clock, failures=3)
    with mock.patch.object(services, "deliver", smtp):
        with django_capture_on_commit_callbacks(execute=True):
            email = _queue()
        for _minute in range(30):
            clock.advance(minutes=1)
            relay_outbox()
        email.refresh_from_db()
        assert email.status == OutboundEmail.Status.FAILED and email.attempts == 3
        assert "mail server down" in email.last_error
        assert "no longer retried" in caplog.text  # logged as an error, not silently dropped
        assert "ERROR" in [r.levelname for r in caplog.records]

        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                reverse("admin:portal_outboundemail_changelist"),
                {"action": "resend", "_selected_action": [str(email.pk)]},
            )
    assert response.status_code == 302
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT and len(mail.outbox) == 1
    event = AuditEvent.objects.get(action="outbox.resent")
    assert event.object_id == str(email.pk) and event.details["status"] == "failed"


@pytest.mark.django_db
def test_a_lost_sent_mark_resends_after_the_lease_with_the_same_message_id(clock) -> None:  # type: ignore[no-untyped-def]
    email = _queue()
    clock.advance(seconds=OUTBOX_HANDOFF_GRACE.total_seconds() + 1)
    with (
        mock.patch.object(services, "_outbox_sent", side_effect=RuntimeError("db gone")),
        pytest.raises(RuntimeError),
    ):
        outbound_email_send(email_id=email.pk)
    assert len(mail.outbox) == 1  # sent, but the worker died before recording it
    assert relay_outbox() == 0  # the lease still holds: nobody else sends it meanwhile
    clock.advance(seconds=OUTBOX_LEASE.total_seconds() + 1)
    assert relay_outbox() == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    first, second = mail.outbox
    assert first.extra_headers["Message-ID"] == second.extra_headers["Message-ID"]


@pytest.mark.django_db(transaction=True)
def test_smtp_runs_outside_any_transaction() -> None:
    seen: list[bool] = []

    def deliver(outbox_email: OutboundEmail) -> None:
        seen.append(connection.in_atomic_block)

    with mock.patch.object(services, "deliver", deliver), transaction.atomic():
        email = _queue()  # sent by the on-commit hand-off, after this block commits
        assert seen == []
    assert seen == [False]
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only()
def test_concurrent_senders_claim_one_email_once() -> None:
    with mock.patch("portal.emails.hand_off"):  # as if the broker had not delivered it yet
        email = _queue()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def slow_deliver(outbox_email: OutboundEmail) -> None:
        time.sleep(0.2)

    def send() -> None:
        try:
            barrier.wait(timeout=30)
            outcome = outbound_email_send(email_id=email.pk)
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    with mock.patch.object(services, "deliver", slow_deliver):
        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(outcomes) == ["sent"] + ["skipped"] * 7
    email.refresh_from_db()
    assert email.attempts == 1


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not redis_url(), reason="needs Redis: set REDIS_URL=redis://… (CI does)")
def test_a_real_worker_delivers_the_license_email_through_redis() -> None:
    from celery.contrib.testing.worker import start_worker

    from licensing.models import License
    from tests.licensing.factories import REGISTRATION, SerialNumberFactory

    celery_conf(task_always_eager=False)
    assert celery_app.conf.broker_url.startswith("redis://")
    serial = SerialNumberFactory()
    membership = MembershipFactory()
    with start_worker(
        celery_app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10
    ):
        from licensing.services import serial_redeem

        serial_redeem(
            code=serial.code,
            organization=membership.organization,
            registration=REGISTRATION,
            acting_user=membership.user,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # Two bodies: the member's, with the link to the license; the technical contact's.
            if OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).count() == 2:
                break
            time.sleep(0.1)
    license = License.objects.get()
    assert {e.status for e in OutboundEmail.objects.all()} == {OutboundEmail.Status.SENT}
    assert len(mail.outbox) == 2
    for email in mail.outbox:
        assert license.key in email.body
        assert email.attachments[0][0] == license.file_name
