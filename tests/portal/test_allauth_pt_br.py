"""allauth's pages in Brazilian Portuguese: no English left (allauth's catalog once read
"Então, por favor, sign in.")."""

from __future__ import annotations

import html
import re

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse

from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db

# Phrases of allauth's English pages; none may show on a pt-BR page.
ENGLISH = [
    "sign in",
    "Sign In",
    "Sign Up",
    "sign up",
    "Forgot",
    "Remember Me",
    "Already have",
    "Then please",
    "Password",
    "password",
    "Email Address",
    "Two-Factor",
    "Authenticator",
    "Recovery Codes",
    "Please",
    "Confirm Access",
    "Verify Your",
    "Are you sure",
    "Add Email",
    "Make Primary",
    # The portal's own sentence-case msgids for allauth's words (its pages in English).
    "Remember me",
    "Verify your",
    "Confirm access",
    "Confirm email",
    "Account inactive",
    "Add email",
    "Make primary",
    "Re-send",
    "Recovery codes",
    "Reset my",
    "no longer valid",
    "log out",
]
ANONYMOUS = [
    "account_login",
    "account_signup",
    "account_reset_password",
    "account_reset_password_done",
    "account_email_verification_sent",
    "account_inactive",
    "account_reset_password_from_key_done",
]
SIGNED_IN = [
    "account_email",
    "account_change_password",
    "account_reauthenticate",
    "account_logout",
    "mfa_index",
    "mfa_activate_totp",
]


def visible_text(page: str) -> str:
    page = re.sub(r"(?s)<script.*?</script>|<style.*?</style>", " ", page)
    return html.unescape(re.sub(r"(?s)<[^>]+>", "\n", page))


def assert_portuguese(response, where: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, where
    text = visible_text(response.content.decode())
    found = [phrase for phrase in ENGLISH if phrase in text]
    assert not found, f"{where}: English on a pt-BR page: {found}"


def _get(client: Client, url: str, **kwargs):  # type: ignore[no-untyped-def]
    return client.get(url, HTTP_ACCEPT_LANGUAGE="pt-br", follow=True, **kwargs)


def _post(client: Client, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(url, data, HTTP_ACCEPT_LANGUAGE="pt-br", follow=True)


@pytest.mark.parametrize("name", ANONYMOUS)
def test_anonymous_pages(client, name) -> None:  # type: ignore[no-untyped-def]
    assert_portuguese(_get(client, reverse(name)), name)


@pytest.mark.parametrize("name", SIGNED_IN)
def test_signed_in_pages(client, name) -> None:  # type: ignore[no-untyped-def]
    user = MembershipFactory().user
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    client.force_login(user)
    assert_portuguese(_get(client, reverse(name)), name)


def test_refusals_and_invalid_links(client) -> None:  # type: ignore[no-untyped-def]
    user = MembershipFactory().user
    assert_portuguese(
        _post(client, reverse("account_login"), {"login": user.email, "password": "wrong"}),
        "wrong password",
    )
    assert_portuguese(
        _post(client, reverse("account_signup"), {"email": user.email}), "sign-up refused"
    )
    assert_portuguese(_get(client, "/accounts/password/reset/key/1-abc/"), "bad reset link")
    assert_portuguese(_get(client, "/accounts/confirm-email/abc/"), "bad confirmation link")
    assert_portuguese(
        _post(client, reverse("account_login"), {"login": user.email, "password": PASSWORD}),
        "signed in",
    )
    assert_portuguese(
        _post(
            client,
            reverse("account_change_password"),
            {"oldpassword": "bad", "password1": "a", "password2": "b"},
        ),
        "password change refused",
    )


def test_the_phrases_are_what_english_pages_show(client) -> None:  # type: ignore[no-untyped-def]
    """Guards the list above: in English the same pages do show them."""
    text = visible_text(
        client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )
    assert [phrase for phrase in ENGLISH if phrase in text]
