"""The email outbox: written with the change, delivered by Celery after commit, never lost."""

from __future__ import annotations

import smtplib
import time
from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.db import transaction
from django.utils import timezone

from portal.celery import app as celery_app
from portal.emails import queue_email
from portal.models import OutboundEmail
from portal.tasks import MAX_ATTEMPTS, relay_outbox, send_outbound_email
from tests.conftest import redis_url
from tests.portal.factories import MembershipFactory


def _queue() -> OutboundEmail:
    membership = MembershipFactory()
    return queue_email(
        template="invitation",
        to=["Someone@Example.com ", "someone@example.com"],
        context={
            "invitation": mock.Mock(token="tok"),
            "organization": membership.organization,
            "inviter": membership.user,
        },
    )


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
def test_sent_once_after_commit_and_idempotent(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        email = _queue()
    assert email.to == ["someone@example.com"]
    assert len(mail.outbox) == 1
    assert send_outbound_email.delay(str(email.pk)).get() == "skipped"  # a redelivered task
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT and email.attempts == 1


@pytest.mark.django_db
def test_relay_sends_what_a_lost_broker_left_pending() -> None:
    email = _queue()  # on_commit never ran: as if the broker was down at commit time
    OutboundEmail.objects.filter(pk=email.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    assert relay_outbox() == 1
    assert len(mail.outbox) == 1
    assert relay_outbox() == 0


@pytest.mark.django_db
def test_smtp_failure_is_recorded_and_retried() -> None:
    email = _queue()
    down = smtplib.SMTPServerDisconnected("down")
    with (
        mock.patch("portal.tasks.deliver", side_effect=down),
        pytest.raises((smtplib.SMTPServerDisconnected, Retry)),
    ):
        send_outbound_email.apply(args=[str(email.pk)], throw=True)
    email.refresh_from_db()
    assert email.attempts >= 1 and "down" in email.last_error
    assert email.attempts <= MAX_ATTEMPTS + 1
    # Once the server is back the relay delivers it.
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=OutboundEmail.Status.PENDING,
        attempts=1,
        created_at=timezone.now() - timedelta(minutes=5),
    )
    relay_outbox()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not redis_url(), reason="needs Redis: set REDIS_URL=redis://… (CI does)")
def test_a_real_worker_delivers_the_license_email_through_redis() -> None:
    from celery.contrib.testing.worker import start_worker

    from licensing.models import License
    from tests.licensing.factories import REGISTRATION, SerialNumberFactory

    celery_app.conf.task_always_eager = False
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
            if OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).exists():
                break
            time.sleep(0.1)
    license = License.objects.get()
    assert OutboundEmail.objects.get().status == OutboundEmail.Status.SENT
    (email,) = mail.outbox
    assert license.key in email.body
    assert email.attachments[0][0] == license.file_name
