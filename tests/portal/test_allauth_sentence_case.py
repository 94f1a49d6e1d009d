"""allauth's pages write their titles, headings, buttons and labels in sentence case, as the
portal does ("Get a license key", "My licenses"): allauth's own read "Sign In", "Change
Password", "Email Addresses", "Two-Factor Authentication", "Remember Me"."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.test import Client
from django.urls import reverse

from portal.models import User
from tests.portal.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"(?s)<[^>]+>", " ", fragment)).split())


def _texts(page: str, tag: str) -> list[str]:
    return [_text(inner) for inner in re.findall(rf"(?s)<{tag}\b[^>]*>(.*?)</{tag}>", page)]


def _wording(response: Any) -> dict[str, Any]:
    """The page's title (without the site name), and its main part's headings, buttons, labels."""
    assert response.status_code == 200
    page = response.content.decode()
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    button_links = re.findall(r'(?s)<a href="[^"]*"\s*class="btn[^"]*"[^>]*>(.*?)</a>', main)
    return {
        "title": _texts(page, "title")[0].rsplit(" · ", 1)[0],
        "h1": _texts(main, "h1"),
        "h2": _texts(main, "h2"),
        "buttons": _texts(main, "button") + [_text(link) for link in button_links],
        # The address list's labels are an address and its badges ("Verified", "Primary").
        "labels": [label for label in _texts(main, "label") if "@" not in label],
    }


def _title_case(text: str) -> bool:
    """Whether a word after the first is capitalized ("Sign In"); acronyms ("TOTP") aside."""
    words = re.findall(r"[^\W\d_][\w'-]*", text)
    return any(word[0].isupper() and not word.isupper() for word in words[1:])


def assert_sentence_case(wording: dict[str, Any], where: str) -> None:
    texts = [wording["title"], *wording["h1"], *wording["h2"]]
    texts += wording["buttons"] + wording["labels"]
    assert not [text for text in texts if _title_case(text)], (where, wording)


def _get(client: Client, url: str) -> Any:
    return client.get(url, HTTP_ACCEPT_LANGUAGE="en", follow=True)


def _log_in(client: Client, user: User) -> None:
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302


def _confirm_access(client: Client) -> None:
    """Enters the password on allauth's "confirm access" page, which guards the 2FA pages."""
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302


def _totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def _with_two_factor(client: Client) -> User:
    """A user logged in with an authenticator app activated (and recovery codes made)."""
    user = MembershipFactory().user
    _log_in(client, user)
    _confirm_access(client)
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    client.post(reverse("mfa_activate_totp"), {"code": _totp_code(secret)})
    assert user.authenticator_set.filter(type="totp").exists()
    return user


# (url name, title, h1) of the pages a visitor sees.
ANONYMOUS = [
    ("account_login", "Log in", "Log in"),
    ("account_signup", "Sign up", "Sign up"),
    ("account_reset_password", "Password reset", "Password reset"),
    ("account_reset_password_done", "Password reset", "Password reset"),
    ("account_email_verification_sent", "Verify your email address", "Verify your email address"),
    ("account_inactive", "Account inactive", "Account inactive"),
    ("account_reset_password_from_key_done", "Change password", "Change password"),
]


@pytest.mark.parametrize(("name", "title", "h1"), ANONYMOUS)
def test_visitor_pages(client: Client, name: str, title: str, h1: str) -> None:
    wording = _wording(_get(client, reverse(name)))
    assert (wording["title"], wording["h1"]) == (title, [h1])
    assert_sentence_case(wording, name)


def test_login_page_buttons_and_labels(client: Client) -> None:
    wording = _wording(_get(client, reverse("account_login")))
    assert "Log in" in wording["buttons"]
    assert wording["labels"] == ["Email:", "Password:", "Remember me:"]


def test_invalid_links(client: Client) -> None:
    bad_reset = _wording(_get(client, "/accounts/password/reset/key/1-abc/"))
    assert (bad_reset["title"], bad_reset["h1"]) == (
        "Change password",
        ["This link is no longer valid"],
    )
    assert_sentence_case(bad_reset, "bad reset link")
    bad_confirmation = _wording(_get(client, "/accounts/confirm-email/abc/"))
    assert (bad_confirmation["title"], bad_confirmation["h1"]) == (
        "Confirm email address",
        ["Confirm email address"],
    )


def test_reset_password_from_key(client: Client) -> None:
    user = UserFactory()
    key = f"{user_pk_to_url_str(user)}-{default_token_generator.make_token(user)}"
    wording = _wording(_get(client, f"/accounts/password/reset/key/{key}/"))
    assert (wording["title"], wording["h1"]) == ("Change password", ["Change password"])
    assert "Change password" in wording["buttons"]
    assert wording["labels"] == ["New password:", "New password (again):"]
    assert_sentence_case(wording, "reset from key")


# (url name, title, h1) of the account pages.
SIGNED_IN = [
    ("account_email", "Email addresses", "Email addresses"),
    ("account_change_password", "Change password", "Change password"),
    ("account_logout", "Log out", "Log out"),
    ("mfa_index", "Two-factor authentication", "Two-factor authentication"),
    ("mfa_activate_totp", "Activate authenticator app", "Activate authenticator app"),
]


@pytest.mark.parametrize(("name", "title", "h1"), SIGNED_IN)
def test_account_pages(client: Client, name: str, title: str, h1: str) -> None:
    user = MembershipFactory().user
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    _log_in(client, user)
    _confirm_access(client)
    wording = _wording(_get(client, reverse(name)))
    assert (wording["title"], wording["h1"]) == (title, [h1])
    assert_sentence_case(wording, name)


def test_account_page_buttons(client: Client) -> None:
    user = MembershipFactory().user
    EmailAddress.objects.create(user=user, email=user.email, verified=False, primary=True)
    _log_in(client, user)
    email = _wording(_get(client, reverse("account_email")))
    assert email["h2"][-1] == "Add email address"
    for button in ("Make primary", "Re-send verification", "Add email"):
        assert button in email["buttons"]
    password = _wording(_get(client, reverse("account_change_password")))
    assert "Change password" in password["buttons"]
    assert password["labels"] == [
        "Current password:",
        "New password:",
        "New password (again):",
    ]
    assert "Log out" in _wording(_get(client, reverse("account_logout")))["buttons"]
    mfa = _wording(_get(client, reverse("mfa_index")))
    assert mfa["h2"][-2:] == ["Authenticator app", "Recovery codes"]


def test_set_password_page(client: Client) -> None:
    user = MembershipFactory().user
    user.set_unusable_password()
    user.save()
    client.force_login(user)
    wording = _wording(_get(client, reverse("account_set_password")))
    assert (wording["title"], wording["h1"]) == ("Set password", ["Set password"])
    assert "Set password" in wording["buttons"]
    assert_sentence_case(wording, "set password")


def test_confirm_access_pages(client: Client) -> None:
    user = MembershipFactory().user
    client.force_login(user)  # not through allauth's login: it asks for the password again
    wording = _wording(_get(client, reverse("account_reauthenticate")))
    assert (wording["title"], wording["h1"]) == ("Confirm access", ["Confirm access"])
    assert_sentence_case(wording, "reauthenticate")


def test_two_factor_pages(client: Client) -> None:
    user = _with_two_factor(client)
    for name, title in (
        ("mfa_deactivate_totp", "Deactivate authenticator app"),
        ("mfa_view_recovery_codes", "Recovery codes"),
        ("mfa_generate_recovery_codes", "Recovery codes"),
        ("mfa_index", "Two-factor authentication"),
    ):
        wording = _wording(_get(client, reverse(name)))
        assert (wording["title"], wording["h1"]) == (title, [title]), name
        assert_sentence_case(wording, name)

    client.logout()
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response["Location"] == reverse("mfa_authenticate")
    wording = _wording(_get(client, reverse("mfa_authenticate")))
    assert (wording["title"], wording["h1"]) == ("Log in", ["Two-factor authentication"])
    assert "Log in" in wording["buttons"]
    assert_sentence_case(wording, "mfa_authenticate")


def test_remember_me_is_the_portals_own_msgid() -> None:
    """allauth's pt-BR catalog reads "Lembrar de Mim" for its "Remember Me"; the portal's own
    "Remember me" is translated in the portal's catalog ("Lembrar de mim")."""
    from portal.forms import PortalLoginForm

    assert PortalLoginForm().fields["remember"].label == "Remember me"


# Passes once portal/locale/pt_BR has the msgid "Remember me" ("Lembrar de mim"): until then
# the label falls back to the English msgid.
def test_remember_me_in_portuguese(client: Client) -> None:
    page = client.get(reverse("account_login"), HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    labels = _texts(page, "label")
    assert "Lembrar de mim:" in labels, labels
