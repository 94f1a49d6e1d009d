"""Every email names the portal (PORTAL_SITE_NAME) and its address (PORTAL_SITE_URL), in both
languages; subjects carry the translated prefix; license emails link to the license itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import translation

from licensing.models import LicenseShare
from licensing.services import license_email_again, license_share
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

EMAILS = Path(settings.BASE_DIR) / "templates" / "emails"
NAMES = {"en": "Licensing Portal", "pt-br": "Portal de licenciamento"}


def _sent(callbacks: Any, action: Any) -> Any:
    with callbacks(execute=True):
        action()
    assert mail.outbox, "no email was sent"
    return mail.outbox[-1]


def _no_empty_site(text: str) -> None:
    for hole in ("Hello from !", "Olá da !", "on .", "em .", "using !", "usar !"):
        assert hole not in text, hole


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_password_reset_email_names_the_portal(
    client: Client, django_capture_on_commit_callbacks: Any, language: str
) -> None:
    user = UserFactory()
    message = _sent(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            reverse("account_reset_password"),
            {"email": user.email},
            HTTP_ACCEPT_LANGUAGE=language,
        ),
    )
    name = NAMES[language]
    assert message.subject.startswith(f"[{name}] "), message.subject
    assert name in message.body and "testserver" in message.body, message.body
    _no_empty_site(message.body)


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_signup_confirmation_email_names_the_portal_and_its_domain(
    client: Client, django_capture_on_commit_callbacks: Any, language: str
) -> None:
    message = _sent(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            reverse("account_signup"),
            {
                "full_name": "Marina Silva",
                "email": "marina@acme.example",
                "password1": "a-long-and-unusual-passphrase",
                "password2": "a-long-and-unusual-passphrase",
                "organization_name": "Acme",
            },
            HTTP_ACCEPT_LANGUAGE=language,
        ),
    )
    assert message.subject.startswith(f"[{NAMES[language]}] ")
    assert NAMES[language] in message.body
    assert re.search(r"(on|em) testserver", message.body), message.body
    _no_empty_site(message.body)


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_a_configured_site_name_is_used_in_both_languages(
    client: Client, settings: Any, django_capture_on_commit_callbacks: Any, language: str
) -> None:
    settings.PORTAL_SITE_NAME = "Acme Licensing"
    settings.PORTAL_SITE_URL = "https://licensing.acme.example"
    user = UserFactory()
    message = _sent(
        django_capture_on_commit_callbacks,
        lambda: client.post(
            reverse("account_reset_password"), {"email": user.email}, HTTP_ACCEPT_LANGUAGE=language
        ),
    )
    assert message.subject.startswith("[Acme Licensing] ")
    assert "Acme Licensing" in message.body and "licensing.acme.example" in message.body


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_share_email_names_the_portal_and_has_a_whole_subject(
    django_capture_on_commit_callbacks: Any, language: str
) -> None:
    admin = MembershipFactory()
    license = LicenseFactory(owner=admin.organization)
    with translation.override(language):
        message = _sent(
            django_capture_on_commit_callbacks,
            lambda: license_share(
                licenses=[license],
                email="someone@else.example",
                access=LicenseShare.Access.READ,
                actor=admin.user,
            ),
        )
    name = NAMES[language]
    assert message.subject.startswith(f"[{name}] ")
    assert not message.subject.rstrip().endswith((" with", " com"))
    assert name in message.body and "http://testserver/" in message.body
    html = message.alternatives[0][0]
    assert name in html


def test_license_email_links_to_the_license_page(django_capture_on_commit_callbacks: Any) -> None:
    admin = MembershipFactory()
    license = LicenseFactory(owner=admin.organization)
    _sent(
        django_capture_on_commit_callbacks,
        lambda: license_email_again(license=license, actor=admin.user),
    )
    (message,) = [m for m in mail.outbox if admin.user.email in m.to]
    link = "http://testserver" + reverse("license-detail", kwargs={"pk": license.pk})
    assert link in message.body
    assert f'href="{link}"' in message.alternatives[0][0]


def test_every_email_template_extends_the_base_that_names_the_portal() -> None:
    """The footer with the site name lives in emails/base.{txt,html}: every body uses it."""
    for body in sorted(EMAILS.glob("*_body.*")):
        base = "emails/base.txt" if body.suffix == ".txt" else "emails/base.html"
        assert body.read_text().startswith(f'{{% extends "{base}" %}}'), body.name
    for base in ("base.txt", "base.html"):
        text = (EMAILS / base).read_text()
        assert "{{ site_name }}" in text and "{{ site_url }}" in text, base
    for subject in EMAILS.glob("*_subject.txt"):
        # The prefix names the portal; a subject that named it again would say it twice.
        assert "Licensing Portal" not in subject.read_text(), subject.name
