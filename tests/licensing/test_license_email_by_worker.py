"""With a Celery worker (the full stack) the license email is written by the worker that sends
it: the mint's transaction writes one small outbox row with what only the request knows, and
holds the serial's lock for none of the rendering, recipients' lookup or file signing. The
emails' contents in both places are the tests of test_license_email_link.py, run twice."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.utils import translation

from licensing.models import License
from licensing.services import issue, serial_redeem
from portal.models import OutboundEmail
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _worker_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(issue, "emails_written_by_sender", lambda: True)


def test_the_mint_writes_one_small_row_that_the_worker_turns_into_the_emails(
    django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    membership = MembershipFactory(user__language="pt-br")
    serial = SerialNumberFactory()
    # The serial, locked; registration, license, outbox row, redemption, serial, audit events;
    # the savepoint of the test's transaction. No recipient is read, nothing is rendered or
    # signed while the serial is locked.
    with (
        django_capture_on_commit_callbacks(execute=False) as handed_over,
        django_assert_num_queries(9),
        translation.override("pt-br"),
    ):
        result = serial_redeem(
            code=serial.code,
            organization=membership.organization,
            registration=REGISTRATION,
            acting_user=membership.user,
        )
    (row,) = OutboundEmail.objects.all()
    assert row.compose == {
        "composer": "license",
        "language": "pt-br",
        "license": str(result.license.pk),
        "event": "issued",
        "actor": membership.user.pk,
        "partner": None,
        "actor_opens": True,
        "acting_outsider": False,
        "context": {"replaces": None, "replaces_whole": True},
    }
    assert row.to == [] and row.body_text == "" and row.attachments == []

    # The hand-off: the worker writes the member's body and the technical contact's, and
    # sends them, in the language the request acted in (the contact has no account).
    for callback in handed_over:
        callback()
    license = License.objects.get()
    emails = {email.to[0]: email for email in OutboundEmail.objects.all()}
    assert set(emails) == {membership.user.email, REGISTRATION["technical_email"]}
    assert {email.status for email in emails.values()} == {OutboundEmail.Status.SENT}
    assert emails[membership.user.email].pk == row.pk  # the row became the first email
    assert "Abrir esta licença" in emails[membership.user.email].body_text
    contact = emails[REGISTRATION["technical_email"]]
    assert "Quantidade" in contact.body_html and "Abrir esta licença" not in contact.body_text
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert license.key in message.body
        assert message.attachments[0][0] == license.file_name


def test_a_context_the_worker_cannot_read_back_is_written_by_the_request(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from tests.licensing.factories import LicenseFactory

    membership = MembershipFactory()
    license = LicenseFactory(owner=membership.organization)
    with django_capture_on_commit_callbacks(execute=False):
        issue.license_email_queue(
            license=license,
            acting_user=membership.user,
            event="issued",
            context={"again": True, "unknown": object()},
        )
    emails = list(OutboundEmail.objects.all())
    assert emails and all(email.compose is None and email.body_text for email in emails)
