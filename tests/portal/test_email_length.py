"""Email addresses longer than the 254 characters every email column holds: each email input
refuses them with its field's error, the one the share form gives, and creates nothing (on
PostgreSQL they were a DataError, a 500; sign-up cut them to 254 characters)."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.contrib.messages import get_messages
from django.urls import reverse

from portal.models import Delegation, Invitation, Membership, Organization, User
from tests.portal.factories import MembershipFactory, PartnerFactory

pytestmark = pytest.mark.django_db

# Valid for Django's EmailValidator, which stops at 320 characters: 262 characters long.
LONG = "a" * 250 + "@example.com"
TOO_LONG = "Ensure this value has at most 254 characters (it has 262)."

CUSTOMER = {
    "name": "Initech Brasil",
    "address": "Rua Funchal 200",
    "country": "BR",
    "contact_name": "Irene Initech",
    "contact_email": "irene@initech.example",
}


@pytest.fixture
def partner_admin(client) -> Membership:  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role=Membership.Role.ADMIN, organization=PartnerFactory())
    client.force_login(membership.user)
    return membership


def test_the_members_invitation_refuses_a_longer_address(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(admin.user)
    response = client.post(reverse("members"), {"email": LONG, "role": "member"})
    assert response.status_code == 200
    assert response.context["invite_form"].errors == {"email": [TOO_LONG]}
    assert not Invitation.objects.exists()


def test_adding_a_customer_refuses_a_longer_contact_address(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("partner-customer-create"), {**CUSTOMER, "contact_email": LONG})
    assert response.status_code == 200
    assert response.context["form"].errors == {"contact_email": [TOO_LONG]}
    assert not Organization.objects.filter(name="Initech Brasil").exists()
    assert not Delegation.objects.exists() and not Invitation.objects.exists()


def test_inviting_a_customer_again_refuses_a_longer_address(client, partner_admin) -> None:  # type: ignore[no-untyped-def]
    client.post(reverse("partner-customer-create"), CUSTOMER)
    delegation = Delegation.objects.get()
    response = client.post(
        reverse("partner-customer-invite", args=[delegation.pk]), {"contact_email": LONG}
    )
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)][-1] == TOO_LONG
    assert not Invitation.objects.filter(email=LONG).exists()
    assert Invitation.objects.get(revoked_at__isnull=True).email == "irene@initech.example"


def test_signup_refuses_a_longer_address_instead_of_cutting_it(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("account_signup"),
        {
            "full_name": "Marina Silva",
            "email": LONG,
            "password1": "a-long-and-unusual-passphrase",
            "password2": "a-long-and-unusual-passphrase",
            "organization_name": "Acme Manufacturing",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"email": [TOO_LONG]}
    assert not User.objects.exists() and not Organization.objects.exists()


def test_adding_an_email_address_refuses_a_longer_one(client) -> None:  # type: ignore[no-untyped-def]
    user = MembershipFactory().user
    client.force_login(user)
    response = client.post(reverse("account_email"), {"action_add": "1", "email": LONG})
    assert response.status_code == 200
    assert response.context["form"].errors == {"email": [TOO_LONG]}
    assert not EmailAddress.objects.filter(email=LONG).exists()
    user.refresh_from_db()
    assert user.email != LONG


def test_an_address_of_254_characters_is_still_accepted(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(admin.user)
    longest = "a" * 242 + "@example.com"
    assert len(longest) == 254
    response = client.post(reverse("members"), {"email": longest, "role": "member"})
    assert response.status_code == 302
    assert Invitation.objects.get().email == longest
