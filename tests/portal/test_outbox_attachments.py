"""Outbox attachments named by reference: built by a registered source when the email is sent;
one that cannot be built fails the send like a mail server error (backoff, then failed)."""

from __future__ import annotations

import base64

import pytest
from django.core import mail

from portal import emails
from portal.emails import Attachment, AttachmentRef, AttachmentUnavailable, queue_email_rendered
from portal.models import OutboundEmail
from portal.services import outbound_email_send, outbound_emails_send
from portal.tasks import send_outbound_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """A registered source "tests.files" that builds what this dict holds under the ref."""
    files: dict[str, bytes] = {}

    def build(ref: str) -> bytes:
        if ref not in files:
            raise AttachmentUnavailable(f"No file {ref}")
        return files[ref]

    monkeypatch.setattr(emails, "_ATTACHMENT_SOURCES", {**emails._ATTACHMENT_SOURCES})
    emails.attachment_source_register("tests.files", build)
    return files


def _queue(*attachments: Attachment | AttachmentRef) -> OutboundEmail:
    return queue_email_rendered(
        template="test", to=["someone@example.com"], subject="S", text="T", attachments=attachments
    )


def test_inline_and_referenced_attachments_are_sent_in_order(source) -> None:  # type: ignore[no-untyped-def]
    email = _queue(
        Attachment("a.txt", b"inline", "text/plain"),
        AttachmentRef("b.bin", "tests.files", "42", "application/octet-stream"),
    )
    inline = {"filename": "a.txt", "content": base64.b64encode(b"inline").decode()}
    named = {"filename": "b.bin", "source": "tests.files", "ref": "42"}
    assert email.attachments == [
        {**inline, "mimetype": "text/plain"},
        {**named, "mimetype": "application/octet-stream"},
    ]
    source["42"] = b"built when sent"
    assert outbound_email_send(email_id=email.pk) == "sent"
    assert mail.outbox[0].attachments == [
        ("a.txt", "inline", "text/plain"),
        ("b.bin", b"built when sent", "application/octet-stream"),
    ]


@pytest.mark.parametrize(
    ("name", "ref", "error"),
    [
        ("nowhere.files", "42", "no attachment source 'nowhere.files'"),
        ("tests.files", "43", "No file 43"),
    ],
)
def test_an_attachment_that_cannot_be_built_fails_the_send_with_backoff(
    source, settings, name, ref, error
) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_EMAIL_MAX_ATTEMPTS = 2
    email = _queue(AttachmentRef("b.bin", name, ref))
    assert send_outbound_email.apply(args=[str(email.pk)]).get() == "retry"
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.PENDING and email.attempts == 1
    assert email.next_attempt_at > email.created_at
    assert "AttachmentUnavailable" in email.last_error and error in email.last_error
    OutboundEmail.objects.filter(pk=email.pk).update(next_attempt_at=email.created_at)
    assert outbound_emails_send(email_ids=[email.pk]) == {"skipped": 0, "failed": 1}
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED and error in email.last_error
    assert mail.outbox == []  # nothing half-sent


def test_a_batch_keeps_its_connection_past_an_attachment_that_cannot_be_built(
    source, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from django.core.mail.backends.locmem import EmailBackend

    opened: list[int] = []
    monkeypatch.setattr(EmailBackend, "open", lambda self: opened.append(1), raising=False)
    broken, fine = _queue(AttachmentRef("b.bin", "tests.files", "43")), _queue()
    assert outbound_emails_send(email_ids=[broken.pk, fine.pk]) == {
        "skipped": 0, "retry": 1, "sent": 1,
    }  # fmt: skip
    assert len(opened) == 1  # the mail server was never involved: no reconnection
    assert [message.subject for message in mail.outbox] == ["S"]
