"""A request Django refuses before any view (a host the portal does not serve, a form too large
or with too many fields) gets the portal's translated 400 page, not a bare English
"Bad Request (400)". The page is rendered without the request: it must not ask it its host."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PT_BR = {"accept-language": "pt-BR"}


def _assert_portal_page(response, language: str, back: str) -> None:  # type: ignore[no-untyped-def]
    page = response.content.decode()
    assert response.status_code == 400
    assert 'data-testid="bad-request"' in page
    assert f'<html lang="{language}">' in page
    assert back in page
    assert "evil.example" not in page


def test_a_host_the_portal_does_not_serve(client: Client) -> None:
    response = client.get("/", headers={"host": "evil.example"})
    _assert_portal_page(response, "en", "Back to the Licensing Portal")


def test_the_page_is_in_the_reader_s_language(client: Client) -> None:
    with translation.override("pt-br"):
        response = client.get("/", headers={"host": "evil.example", **PT_BR})
    _assert_portal_page(response, "pt-br", "Voltar ao Portal de licenciamento")


def test_a_form_with_too_many_fields(client: Client) -> None:
    client.force_login(MembershipFactory().user)
    data = {f"license_{n}": "x" for n in range(1001)}
    with translation.override("pt-br"):
        response = client.post(reverse("license-share"), data, headers=PT_BR)
    _assert_portal_page(response, "pt-br", "Voltar ao Portal de licenciamento")


def test_a_form_too_large(client: Client) -> None:
    client.force_login(MembershipFactory().user)
    response = client.post(reverse("license-share"), {"message": "x" * 3_000_000})
    _assert_portal_page(response, "en", "Back to the Licensing Portal")
