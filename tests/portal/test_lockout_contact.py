"""A spent failed-attempt budget says whom to contact, with the configured support links."""

from __future__ import annotations

from typing import Any

import pytest
from allauth.core.internal.ratelimit import handler429
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation

from licensing.codes import generate_code
from portal.ratelimit import code_limit_message, support_contact
from tests.licensing.factories import SerialNumberFactory
from tests.licensing.wizard import post_step
from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db

URL = "https://support.example.com/contact?topic=lockout&x=1"
EMAIL = "care@vendor.example"
LINK = '<a href="https://support.example.com/contact?topic=lockout&amp;x=1">customer care</a>'
MAILTO = f'<a href="mailto:{EMAIL}">{EMAIL}</a>'


@pytest.fixture
def support(settings) -> Any:  # type: ignore[no-untyped-def]
    settings.PORTAL_SUPPORT_URL = URL
    settings.PORTAL_SUPPORT_EMAIL = EMAIL
    return settings


def test_the_sentence_links_what_is_configured(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_SUPPORT_URL = ""
    settings.PORTAL_SUPPORT_EMAIL = ""
    assert str(support_contact()) == "If you need help, contact customer care."
    settings.PORTAL_SUPPORT_EMAIL = EMAIL
    assert str(support_contact()) == f"If you need help, contact {MAILTO}."
    settings.PORTAL_SUPPORT_URL = URL
    assert str(support_contact()) == f"If you need help, contact {LINK} or {MAILTO}."
    settings.PORTAL_SUPPORT_EMAIL = '"><script>x</script>'
    assert "<script>" not in str(support_contact())
    with translation.override("pt-br"):
        assert "Se precisar de ajuda" in str(code_limit_message(3))
        assert "3 minutos" in str(code_limit_message(3))


def test_get_a_key_lockout_links_support(client, support) -> None:  # type: ignore[no-untyped-def]
    support.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 1
    client.force_login(MembershipFactory().user)
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": generate_code()})
    html = post_step(client, "serial", {"serial": SerialNumberFactory().code}).content.decode()
    assert "Too many codes were not recognised" in html
    assert LINK in html and MAILTO in html
    assert "&lt;a" not in html


def test_fileconnect_lockout_links_support(client, support) -> None:  # type: ignore[no-untyped-def]
    support.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 1
    client.force_login(MembershipFactory().user)
    client.post(reverse("fileconnect"), {"serial": generate_code()})
    html = client.post(reverse("fileconnect"), {"serial": generate_code()}).content.decode()
    assert "Too many codes were not recognised" in html
    assert LINK in html and "&lt;a" not in html


def test_login_lockout_links_support(support) -> None:  # type: ignore[no-untyped-def]
    user = MembershipFactory().user
    client = Client(REMOTE_ADDR="203.0.113.50")
    for _ in range(6):
        response = client.post(reverse("account_login"), {"login": user.email, "password": "no"})
    html = client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}
    ).content.decode()
    assert "Too many failed login attempts" in html
    assert LINK in html and MAILTO in html
    assert "&lt;a" not in html
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("language", "title", "english"),
    [("en", "Too many attempts", None), ("pt-br", "Muitas tentativas", "Too many")],
)
def test_the_429_page_is_translated_and_links_support(support, language, title, english) -> None:  # type: ignore[no-untyped-def]
    request = RequestFactory().get("/accounts/password/reset/")
    request.user = AnonymousUser()
    request.session = {}  # type: ignore[assignment]
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    with translation.override(language):
        response = handler429(request)
    html = response.content.decode()
    assert response.status_code == 429
    assert title in html
    assert MAILTO in html
    if english:
        assert english not in html
