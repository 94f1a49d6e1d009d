"""The conversion email's zip: named by the outbox row in the conversion's transaction, built
from the committed licenses when the email is sent (by one send, a batch, or a staff resend)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from django.core import mail
from django.urls import reverse

from licensing.models import License
from portal.emails import AttachmentRef, deliver, queue_email_rendered
from portal.models import OutboundEmail
from portal.services import outbound_email_send, outbound_emails_send
from portal.tasks import send_outbound_email
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import convert_separately, vouchers
from tests.vouchers.zips import assert_zip_of
from vouchers.emails import CONVERSION_FILES, ZIP_NAME, ZIP_THRESHOLD
from vouchers.models import VoucherConversion

pytestmark = pytest.mark.django_db

COUNT = ZIP_THRESHOLD + 2


def _convert() -> VoucherConversion:
    # The technical contact: one email (test_conversion_email_links has a contact's body).
    member = MembershipFactory(user__email=REGISTRATION["technical_email"])
    result = convert_separately(member, [v.code for v in vouchers(COUNT)])
    assert len(result.licenses) == COUNT
    return result.conversion


def test_the_outbox_row_names_the_zip_instead_of_holding_it() -> None:
    # Not handed off here: the row as the conversion's last transaction wrote it.
    conversion = _convert()
    email = OutboundEmail.objects.get()
    assert email.attachments == [
        {
            "filename": ZIP_NAME,
            "mimetype": "application/zip",
            "source": CONVERSION_FILES,
            "ref": str(conversion.pk),
        }
    ]
    # The body still says what committed, without waiting for the files.
    assert f"{COUNT} license keys" in email.subject
    assert all(lic.key in email.body_text for lic in License.objects.all())


def test_the_zip_is_built_when_the_email_is_sent(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    conversion = _convert()
    email = OutboundEmail.objects.get()
    # The conversion, its licenses and their versions: three reads, whatever the count.
    with django_assert_num_queries(3):
        deliver(email)
    mail.outbox = []
    assert outbound_email_send(email_id=email.pk) == "sent"
    ((filename, content, mimetype),) = mail.outbox[0].attachments
    assert (filename, mimetype) == (ZIP_NAME, "application/zip")
    assert_zip_of(content, conversion)


def test_a_batch_builds_it_too() -> None:
    # The relay's path: the batch claim returns the row's attachments by raw SQL.
    conversion = _convert()
    email = OutboundEmail.objects.get()
    assert outbound_emails_send(email_ids=[email.pk]) == {"skipped": 0, "sent": 1}
    ((filename, content, _mimetype),) = mail.outbox[0].attachments
    assert filename == ZIP_NAME
    assert_zip_of(content, conversion)


def test_a_gone_conversion_fails_the_send_with_backoff_and_a_clear_error(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_EMAIL_MAX_ATTEMPTS = 2
    gone = str(uuid4())
    email = queue_email_rendered(
        template="vouchers_converted",
        to=["someone@example.com"],
        subject="Your license keys",
        text="…",
        attachments=[AttachmentRef(ZIP_NAME, CONVERSION_FILES, gone, "application/zip")],
    )
    # The task returns its outcome: nothing escapes it for Celery to redeliver in a loop.
    assert send_outbound_email.apply(args=[str(email.pk)]).get() == "retry"
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.PENDING and email.attempts == 1
    assert email.next_attempt_at > email.created_at
    assert f"Voucher conversion {gone} no longer exists" in email.last_error
    assert mail.outbox == []
    OutboundEmail.objects.filter(pk=email.pk).update(next_attempt_at=email.created_at)
    assert outbound_email_send(email_id=email.pk) == "failed"
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED and mail.outbox == []


def test_a_ref_that_is_no_id_fails_the_send_the_same_way() -> None:
    email = queue_email_rendered(
        template="vouchers_converted",
        to=["someone@example.com"],
        subject="Your license keys",
        text="…",
        attachments=[AttachmentRef(ZIP_NAME, CONVERSION_FILES, "not-a-uuid", "application/zip")],
    )
    assert outbound_emails_send(email_ids=[email.pk]) == {"skipped": 0, "retry": 1}
    email.refresh_from_db()
    assert "Voucher conversion not-a-uuid no longer exists" in email.last_error


def test_staff_resend_a_failed_conversion_email_with_its_zip(
    admin_client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    conversion = _convert()
    email = OutboundEmail.objects.get()
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=OutboundEmail.Status.FAILED, attempts=12, last_error="mail server down"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:portal_outboundemail_changelist"),
            {"action": "resend", "_selected_action": [str(email.pk)]},
        )
    assert response.status_code == 302
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    ((_filename, content, _mimetype),) = mail.outbox[0].attachments
    assert_zip_of(content, conversion)


def test_past_the_attachment_limit_the_email_links_to_the_zip_instead(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from vouchers import emails

    monkeypatch.setattr(emails, "ATTACH_MAX_LICENSES", COUNT - 1)  # the email's and the page's
    conversion = _convert()
    email = OutboundEmail.objects.get()
    assert email.attachments == []
    zip_path = reverse("voucher-conversion-zip", args=[conversion.pk])
    for body in (email.body_text, email.body_html):
        assert "too many license files to attach" in body
        assert "are attached" not in body
        assert zip_path in body
    # A technical contact who is no member gets no link (test_conversion_email_links).
    assert f"(sign in first):\nhttp://testserver{zip_path}\nInstall each file" in email.body_text
    assert all(lic.key in email.body_text for lic in License.objects.all())
    assert outbound_email_send(email_id=email.pk) == "sent"
    assert mail.outbox[0].attachments == []

    client.force_login(conversion.created_by)
    page = client.get(reverse("voucher-conversion", args=[conversion.pk])).content.decode()
    assert "with a link to this zip: too many license files to attach" in page
    assert "The keys and the license files were emailed" not in page
