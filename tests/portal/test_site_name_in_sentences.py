"""No email or page sentence hard-codes "Licensing Portal": the name is PORTAL_SITE_NAME."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.utils import translation

from portal.models import Membership
from portal.services import invitation_create
from tests.portal.factories import MembershipFactory

EMAILS = Path(settings.BASE_DIR) / "templates" / "emails"
LITERALS = ("Licensing Portal", "Portal de licenciamento", "Portal de Licenciamento")


def test_no_email_template_names_the_portal_literally() -> None:
    for template in sorted(EMAILS.glob("*")):
        text = template.read_text()
        assert not any(literal in text for literal in LITERALS), template.name


def test_no_translated_email_sentence_names_the_portal_literally() -> None:
    """The pt-BR catalog's sentences from email templates use %(site_name)s too."""
    catalog = (Path(settings.BASE_DIR) / "portal/locale/pt_BR/LC_MESSAGES/django.po").read_text()
    for entry in catalog.split("\n\n"):
        if "templates/emails/" in entry:
            strings = re.sub(r"(?m)^#.*$", "", entry)
            assert not any(literal in strings for literal in LITERALS), entry


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_an_invitation_names_the_configured_portal(  # type: ignore[no-untyped-def]
    settings, django_capture_on_commit_callbacks: Any, language: str
) -> None:
    settings.PORTAL_SITE_NAME = "Acme Licensing"
    admin = MembershipFactory(role=Membership.Role.ADMIN)
    with translation.override(language), django_capture_on_commit_callbacks(execute=True):
        invitation_create(
            organization=admin.organization,
            email="new.colleague@example.com",
            role=Membership.Role.MEMBER,
            invited_by=admin.user,
        )
    message = mail.outbox[-1]
    sentence = {"en": "on Acme Licensing.", "pt-br": "no Acme Licensing."}[language]
    assert sentence in message.body, message.body
    assert not any(literal in message.body for literal in LITERALS)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "header"),
    [("en", "Acme Licensing administration"), ("pt-br", "Administração do Acme Licensing")],
)
def test_the_admin_names_the_configured_portal(  # type: ignore[no-untyped-def]
    settings, admin_client: Any, language: str, header: str
) -> None:
    settings.PORTAL_SITE_NAME = "Acme Licensing"
    response = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE=language)
    assert header in response.content.decode()
    assert "Licensing Portal administration" not in response.content.decode()
