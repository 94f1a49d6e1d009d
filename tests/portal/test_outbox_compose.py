"""Emails their sender writes (portal.emails.queue_email_later): the transaction that causes
the email writes one small row naming what it is written from; the sender turns it into the
rendered emails before sending them, once, and a composer that fails is retried like a failed
send, then left to staff, never sent empty."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import connections, transaction
from django.urls import reverse
from django.utils import timezone, translation

from portal import emails, services
from portal.emails import email_variant_rows, queue_email_later
from portal.models import OutboundEmail
from portal.services import OUTBOX_HANDOFF_GRACE, outbound_email_send, outbound_emails_send
from portal.tasks import relay_outbox
from tests.conftest import postgres_only
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


class Composer:
    """A test composer: two bodies of one email (an invitation), in the language it runs in."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], str]] = []
        self.fail: Exception | None = None
        self.hold: threading.Event | None = None
        self.entered = threading.Event()

    def __call__(self, spec: dict[str, Any]) -> list[OutboundEmail]:
        self.calls.append((spec, translation.get_language()))
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(timeout=30)
        if self.fail is not None:
            raise self.fail
        membership = MembershipFactory.build()
        context = {
            "invitation": mock.Mock(token=spec["token"], expires_at=timezone.now()),
            "organization": membership.organization,
            "inviter": membership.user,
        }
        return email_variant_rows(
            template="invitation",
            variants=[(["one@example.com"], context), (["two@example.com"], context)],
        )


@pytest.fixture
def composer(monkeypatch: pytest.MonkeyPatch) -> Composer:
    made = Composer()
    monkeypatch.setitem(emails._COMPOSERS, "test", made)
    return made


def _queued(language: str = "pt-br", token: str = "tok-1") -> OutboundEmail:  # noqa: S107
    with transaction.atomic():
        return queue_email_later(
            template="invitation",
            spec={"composer": "test", "language": language, "token": token},
        )


def test_one_small_row_becomes_the_emails_when_it_is_sent(
    composer: Composer, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        row = _queued()
    # Written by the sender, in the language the request acted in, not the sender's own.
    assert [(spec["token"], language) for spec, language in composer.calls] == [("tok-1", "pt-br")]
    emails_sent = OutboundEmail.objects.order_by("to")
    assert [email.to for email in emails_sent] == [["one@example.com"], ["two@example.com"]]
    assert {email.status for email in emails_sent} == {OutboundEmail.Status.SENT}
    row.refresh_from_db()
    assert row.compose is None and row.to == ["one@example.com"] and row.body_text
    assert {email.created_at for email in emails_sent} == {row.created_at}
    assert sorted(message.to[0] for message in mail.outbox) == [
        "one@example.com",
        "two@example.com",
    ]
    # Portuguese: the site's name in the subject says so.
    assert all(message.subject.startswith("[Portal de licenciamento]") for message in mail.outbox)


def test_a_row_still_to_be_written_is_never_sent_as_it_is(
    composer: Composer, admin_client: Any
) -> None:
    row = _queued()  # its hand-off never ran
    # Staff see what it is, not an empty subject, and what it is written from.
    listed = admin_client.get(reverse("admin:portal_outboundemail_changelist")).content.decode()
    assert "(written by the worker when it sends it)" in listed
    shown = admin_client.get(
        reverse("admin:portal_outboundemail_change", args=[row.pk])
    ).content.decode()
    assert "invitation (written by the worker when it sends it)" in shown
    assert "To be written from" in shown and "&quot;token&quot;: &quot;tok-1&quot;" in shown
    assert outbound_email_send(email_id=row.pk) == "skipped"
    assert outbound_emails_send(email_ids=[row.pk]) == {"skipped": 1}
    row.refresh_from_db()
    assert row.compose is not None and row.attempts == 0 and not mail.outbox
    assert not composer.calls


def test_the_relay_writes_and_sends_what_was_never_handed_over(composer: Composer) -> None:
    row = _queued()
    OutboundEmail.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - OUTBOX_HANDOFF_GRACE - timedelta(seconds=1)
    )
    assert relay_outbox() == 1
    assert OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).count() == 2
    assert len(mail.outbox) == 2


def test_a_composer_that_fails_is_retried_then_left_to_staff_who_send_it_again(
    composer: Composer, django_capture_on_commit_callbacks: Any
) -> None:
    composer.fail = RuntimeError("template missing")
    row = _queued()
    with mock.patch.object(services.logger, "error") as logged:
        assert outbound_emails_send(email_ids=[row.pk], compose=True) == {"skipped": 1}
    logged.assert_called_once()
    row.refresh_from_db()
    assert row.status == OutboundEmail.Status.PENDING and row.attempts == 1
    assert "template missing" in row.last_error and row.next_attempt_at > timezone.now()
    assert row.compose is not None and not mail.outbox
    # The last attempt: failed, for staff, still unwritten (never sent empty).
    OutboundEmail.objects.filter(pk=row.pk).update(
        attempts=settings.PORTAL_EMAIL_MAX_ATTEMPTS - 1, next_attempt_at=timezone.now()
    )
    outbound_emails_send(email_ids=[row.pk], compose=True)
    row.refresh_from_db()
    assert row.status == OutboundEmail.Status.FAILED and row.compose is not None
    # Fixed, staff send it again: written by the sender, as when it was queued.
    composer.fail = None
    with django_capture_on_commit_callbacks(execute=True):
        assert services.outbound_emails_resend(emails=[row], actor=UserFactory(is_staff=True)) == 1
    row.refresh_from_db()
    assert row.compose is None and row.status == OutboundEmail.Status.SENT
    assert len(mail.outbox) == 2


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_two_senders_write_a_row_once(composer: Composer) -> None:
    with mock.patch.object(emails, "hand_off_batches"):  # committed, not handed over
        row = _queued()
    composer.hold = threading.Event()
    written: list[list[Any]] = []

    def first_sender() -> None:
        try:
            written.append(services.outbox_compose([row.pk], now=timezone.now()))
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_sender)
    thread.start()
    try:
        assert composer.entered.wait(timeout=30)
        # The row is locked by the first sender: the second skips it, does not wait for it.
        assert services.outbox_compose([row.pk], now=timezone.now()) == [row.pk]
    finally:
        composer.hold.set()
        thread.join(timeout=60)
    assert len(written) == 1 and len(written[0]) == 2
    assert len(composer.calls) == 1
    assert OutboundEmail.objects.count() == 2
    # Written: nothing left to write for a third.
    assert services.outbox_compose([row.pk], now=timezone.now()) == [row.pk]
    assert len(composer.calls) == 1
