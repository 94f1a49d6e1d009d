"""TOTP two-factor authentication (django-allauth's mfa), end to end through the pages."""

from __future__ import annotations

import time

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db


def _code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_activate_totp_then_login_asks_for_the_code(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    email = membership.user.email
    client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/")
    if page.status_code == 302:  # allauth may ask to re-enter the password first
        client.post(page["Location"], {"password": PASSWORD})
        page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = page.context["form"].secret
    response = client.post("/accounts/2fa/totp/activate/", {"code": _code(secret)})
    assert response.status_code == 302
    assert membership.user.authenticator_set.filter(type="totp").exists()

    client.logout()
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert response.status_code == 302 and "/accounts/2fa/authenticate/" in response["Location"]
    assert client.get("/dashboard/").status_code == 302  # not logged in until the code
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200 and client.get("/dashboard/").status_code == 302
    client.post("/accounts/2fa/authenticate/", {"code": _code(secret)})
    assert client.get("/dashboard/").status_code == 200
