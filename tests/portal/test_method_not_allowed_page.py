"""A GET of an address that only takes a submitted form is a translated page with a way back,
not Django's empty 405."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_a_form_only_address_opened_directly_says_what_to_do(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)
    response = client.get(
        reverse("organization-switch"), headers={"referer": "http://testserver/licenses/"}
    )
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    page = response.content.decode()
    assert 'data-testid="method-not-allowed"' in page
    assert 'href="http://testserver/licenses/"' in page  # back where it came from
    assert "no-store" in response["Cache-Control"]


def test_the_page_is_translated_and_never_links_off_site(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)
    with translation.override("pt-br"):
        response = client.get(
            reverse("organization-switch"),
            headers={"referer": "https://evil.example/", "accept-language": "pt-BR"},
        )
    page = response.content.decode()
    assert response.status_code == 405
    assert "Nada para mostrar aqui" in page
    assert "evil.example" not in page and f'href="{reverse("dashboard")}"' in page


def test_other_methods_keep_the_plain_answer(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)
    response = client.put(reverse("organization-switch"))
    assert response.status_code == 405 and response.content == b""
