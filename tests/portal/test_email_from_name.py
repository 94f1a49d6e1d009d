"""The From's display name is the portal's name in the email's language, as the subject's
prefix is; a display name configured in DEFAULT_FROM_EMAIL is kept as it is."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from portal.emails import queue_email
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _send(callbacks: Any, language: str) -> Any:
    membership = MembershipFactory()
    with callbacks(execute=True):
        queue_email(
            template="invitation",
            to=["someone@example.com"],
            context={
                "invitation": mock.Mock(token="tok", expires_at=timezone.now()),
                "organization": membership.organization,
                "inviter": membership.user,
            },
            language=language,
        )
    return mail.outbox[-1]


@pytest.mark.parametrize(
    ("language", "name"), [("en", "Licensing Portal"), ("pt-br", "Portal de licenciamento")]
)
def test_the_sender_is_named_in_the_emails_language(
    django_capture_on_commit_callbacks: Any, language: str, name: str
) -> None:
    # The pt-BR email's subject said "[Portal de licenciamento]" under "From: Licensing Portal".
    message = _send(django_capture_on_commit_callbacks, language)
    assert message.subject.startswith(f"[{name}] ")
    assert message.from_email == f"{name} <licensing@example.com>"
    assert message.message()["From"] == f"{name} <licensing@example.com>"


def test_a_configured_display_name_is_kept_in_every_language(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.DEFAULT_FROM_EMAIL = "Acme Licensing <licensing@acme.example>"
    settings.PORTAL_FROM_NAME_IS_SITE_NAME = False
    message = _send(django_capture_on_commit_callbacks, "pt-br")
    assert message.from_email == "Acme Licensing <licensing@acme.example>"


def test_a_configured_site_name_names_the_sender_in_every_language(
    django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.PORTAL_SITE_NAME = "Acme Licensing"
    message = _send(django_capture_on_commit_callbacks, "pt-br")
    assert message.subject.startswith("[Acme Licensing] ")
    assert message.from_email == "Acme Licensing <licensing@example.com>"
