"""A form whose CSRF token went stale (logging in or out in another tab rotates it): the
portal's own translated page with a way back, not Django's bare technical page; a second login
while logged in, or a logout of no session, simply goes on."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db

EXPIRED = "This page expired (it was open while you logged in or out elsewhere)."


def _token(response) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())
    assert found
    return found.group(1)


def _login(client: Client, token: str, email: str, **extra):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("account_login"),
        {"login": email, "password": PASSWORD, "csrfmiddlewaretoken": token},
        **extra,
    )


@pytest.fixture
def tabs() -> Client:
    return Client(enforce_csrf_checks=True)


def test_logging_in_again_in_a_second_tab_goes_to_the_dashboard(tabs) -> None:  # type: ignore[no-untyped-def]
    email = MembershipFactory().user.email
    tab_a = _token(tabs.get(reverse("account_login")))
    tab_b = _token(tabs.get(reverse("account_login")))
    assert _login(tabs, tab_a, email).status_code == 302  # logging in rotates the token
    response = _login(tabs, tab_b, email, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert f"You are already logged in as {email}." in response.content.decode()


def test_a_stale_language_switcher_gets_the_portal_page(tabs) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    page = tabs.get(reverse("account_login"))
    stale = _token(page)
    _login(tabs, stale, membership.user.email)  # in another tab
    licenses = "http://testserver" + reverse("license-list")
    response = tabs.post(
        reverse("set_language"),
        {"language": "pt-br", "next": "/", "csrfmiddlewaretoken": stale},
        HTTP_REFERER=licenses,
    )
    assert response.status_code == 403
    content = response.content.decode()
    assert EXPIRED in content and "Reload the page and try again." in content
    assert "DEBUG" not in content and "<style" not in content
    assert f'href="{licenses}"' in content  # back to the page the form was on
    assert 'id="main-menu"' in content and reverse("dashboard") in content  # the portal's page
    assert response["Cache-Control"] == "no-store"


def test_the_page_is_in_the_visitor_language_and_goes_home_from_elsewhere(tabs) -> None:  # type: ignore[no-untyped-def]
    tabs.cookies["django_language"] = "pt-br"
    tabs.get(reverse("account_login"))
    response = tabs.post(
        reverse("account_signup"),
        {"csrfmiddlewaretoken": "x" * 32},
        HTTP_REFERER="https://elsewhere.example/",
    )
    assert response.status_code == 403
    content = response.content.decode()
    assert '<html lang="pt-br"' in content
    assert 'href="/"' in content and "elsewhere.example" not in content


def test_a_form_posted_without_the_cookie_says_to_allow_cookies(tabs) -> None:  # type: ignore[no-untyped-def]
    response = tabs.post(reverse("account_login"), {"login": "a@b.example", "password": "x"})
    assert response.status_code == 403
    assert "Allow cookies for this site" in response.content.decode()


def test_a_stale_logout_of_a_session_already_logged_out_goes_home(tabs) -> None:  # type: ignore[no-untyped-def]
    email = MembershipFactory().user.email
    _login(tabs, _token(tabs.get(reverse("account_login"))), email)
    tab_b = _token(tabs.get(reverse("dashboard")))
    # Tab A logs out, in and out again: the login rotated the token tab B's page holds.
    tabs.post(reverse("account_logout"), {"csrfmiddlewaretoken": tab_b})
    _login(tabs, _token(tabs.get(reverse("account_login"))), email)
    tabs.post(
        reverse("account_logout"), {"csrfmiddlewaretoken": _token(tabs.get(reverse("dashboard")))}
    )
    response = tabs.post(reverse("account_logout"), {"csrfmiddlewaretoken": tab_b})
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_a_stale_logout_of_a_live_session_logs_nobody_out(tabs) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    token = _token(tabs.get(reverse("account_login")))
    _login(tabs, token, membership.user.email)  # the token the login page had is stale now
    response = tabs.post(reverse("account_logout"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 403 and EXPIRED in response.content.decode()
    assert tabs.get(reverse("dashboard")).status_code == 200
