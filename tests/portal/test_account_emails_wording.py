"""allauth's emails (password reset, address verification, sign-in code, notices) in the
portal's own wording and layout: its footer, no gendered "Olá da <site>" in Brazilian
Portuguese, links on the configured address (PORTAL_SITE_URL) rather than the request's host,
and an HTML part like the portal's other emails."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.template.loader import render_to_string
from django.test import Client
from django.urls import reverse
from django.utils import translation

from portal.emails import site_context
from tests.portal.factories import UserFactory

pytestmark = pytest.mark.django_db

# allauth's greeting and farewell, which in pt-BR read "Olá da Portal de licenciamento!".
ALLAUTH_FRAME = ("Hello from", "Thank you for using", "Olá da", "Olá do", "Obrigado por usar")
TEMPLATES = [
    "account/email/password_reset_key_message.txt",
    "account/email/email_confirmation_message.txt",
    "account/email/email_confirmation_signup_message.txt",
    "account/email/login_code_message.txt",
    "account/email/unknown_account_message.txt",
    "account/email/account_already_exists_message.txt",
    "account/email/password_changed_message.txt",
]


@pytest.mark.parametrize("language", ["en", "pt-br"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_allauth_emails_use_the_portals_frame(template: str, language: str) -> None:
    user = UserFactory()
    with translation.override(language):
        context = {"user": user, "email": user.email, "code": "123456", **site_context()}
        text = render_to_string(template, context)
        name = site_context()["site_name"]
    for phrase in ALLAUTH_FRAME:
        assert phrase not in text, (phrase, text)
    assert text.rstrip().endswith(f"-- \n{name}\nhttp://testserver/"), text


def test_reset_link_uses_the_configured_address_and_has_an_html_part(
    client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PORTAL_SITE_URL = "https://licensing.acme.example"
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("account_reset_password"),
            {"email": user.email},
            HTTP_HOST="127.0.0.1",
        )
    (message,) = mail.outbox
    assert "https://licensing.acme.example/accounts/password/reset/key/" in message.body
    assert "127.0.0.1" not in message.body
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert 'href="https://licensing.acme.example/accounts/password/reset/key/' in html
    assert "licensing.acme.example" in html and "127.0.0.1" not in html


def test_verification_link_uses_the_configured_address(
    client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PORTAL_SITE_URL = "https://licensing.acme.example"
    user = UserFactory()
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("account_email"),
            {"email": "second@example.org", "action_add": ""},
            HTTP_HOST="127.0.0.1",
        )
    (message,) = mail.outbox
    assert "https://licensing.acme.example/accounts/confirm-email/" in message.body, message.body


def test_security_changes_are_notified_to_the_account(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    # A password changed (or reset) or an address added sent nothing: an account could be
    # taken over without its owner being told.
    user = UserFactory(password="old-Password-2026!")
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_change_password"),
            {
                "oldpassword": "old-Password-2026!",
                "password1": "new-Password-2026!x",
                "password2": "new-Password-2026!x",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    (notice,) = mail.outbox
    assert notice.to == [user.email]
    assert "password" in notice.subject.lower()
    assert "IP address" in notice.body
    assert notice.alternatives  # framed like the portal's other emails, with an HTML part
    # An address removed: the account's address is told which.
    EmailAddress.objects.create(user=user, email="second@example.com", verified=True)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("account_email"), {"action_remove": "", "email": "second@example.com"})
    (removed,) = mail.outbox
    assert removed.to == [user.email] and "second@example.com" in removed.body
