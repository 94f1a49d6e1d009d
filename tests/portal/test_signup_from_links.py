"""Sign-up reached from an emailed link: the address is the emailed one and cannot change; an
invited person names no organization; a share recipient may leave it empty; the help text says
what the form does."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from licensing.models import LicenseShare
from licensing.services import license_share
from portal.models import Membership, User
from portal.services import invitation_create
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-and-unusual-passphrase"


def _share_link(callbacks: Any, email: str = "guest@partner.example") -> tuple[str, Any]:
    admin = MembershipFactory()
    license = LicenseFactory(owner=admin.organization)
    with callbacks(execute=True):
        license_share(
            licenses=[license], email=email, access=LicenseShare.Access.READ, actor=admin.user
        )
    link = re.search(r"http://testserver(/licenses/shared/[\w-]+/)", mail.outbox[-1].body)
    assert link is not None
    return link.group(1), license


def test_share_signup_fixes_the_address_and_needs_no_organization(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    link, license = _share_link(django_capture_on_commit_callbacks)
    client.get(link)
    page = client.get(reverse("account_signup")).content.decode()
    assert 'value="guest@partner.example"' in page and "readonly" in page
    assert "Licenses were shared with guest@partner.example" in page
    assert "Optional. Leave it empty" in page
    response = client.post(
        reverse("account_signup"),
        {
            "full_name": "Gabriela Guest",
            "email": "someone-else@elsewhere.example",  # ignored: the share's address counts
            "password1": PASSWORD,
            "password2": PASSWORD,
            "organization_name": "",
        },
    )
    assert response.status_code == 302 and response["Location"] == link
    assert not User.objects.filter(email="someone-else@elsewhere.example").exists()
    user = User.objects.get(email="guest@partner.example")
    membership = Membership.objects.get(user=user)
    assert membership.organization.name == "Gabriela Guest"  # what the help text promised
    listing = client.get(client.get(link)["Location"]).content.decode()
    assert license.key[-5:] in listing


def test_invitation_signup_fixes_the_address_and_asks_no_organization(client: Client) -> None:
    admin = MembershipFactory()
    invitation = invitation_create(
        organization=admin.organization,
        email="new@acme.example",
        role="member",
        invited_by=admin.user,
    )
    client.get(reverse("invitation", args=[invitation.token]))
    page = client.get(reverse("account_signup")).content.decode()
    assert 'value="new@acme.example"' in page and "readonly" in page
    assert 'name="organization_name"' not in page
    assert "You were invited to join an organization" in page


def test_another_address_starts_a_plain_signup(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    link, _license = _share_link(django_capture_on_commit_callbacks)
    client.get(link)
    page = client.get(reverse("account_signup"), {"another_address": "1"}).content.decode()
    assert "readonly" not in page
    assert "you become its administrator" in page  # the organization is required again


def test_plain_signup_help_text_matches_what_the_form_requires(client: Client) -> None:
    page = client.get(reverse("account_signup")).content.decode()
    assert "Leave empty if you were invited" not in page
    assert "you become its administrator" in page
    refused = client.post(
        reverse("account_signup"),
        {
            "full_name": "Marina",
            "email": "m@acme.example",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "organization_name": "",
        },
    )
    assert "Enter your organization" in refused.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "account_login",
        "account_signup",
        "account_reset_password",
        "account_email",
        "account_change_password",
        "mfa_index",
    ],
)
def test_account_pages_in_portuguese_have_no_english_left(client: Client, url: str) -> None:
    client.force_login(MembershipFactory().user)
    if url in ("account_login", "account_signup", "account_reset_password"):
        client.logout()
    page = client.get(reverse(url), HTTP_ACCEPT_LANGUAGE="pt-br", follow=True)
    text = re.sub(r"<[^>]+>", " ", page.content.decode())
    for english in ("sign in", "Sign In", "Sign Up", "Email addresses", "Two-factor", "Password"):
        assert english not in text, (url, english)
