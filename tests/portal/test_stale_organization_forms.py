"""A form opened for one organization and posted after the user switched to another (in another
tab, or a partner starting or stopping to act for a customer) changes nothing.

It used to write into the organization switched to: a delegation with every scope, or an
administrator's invitation, granted by the wrong organization without a word.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from portal.http import ORGANIZATION_FIELD
from portal.models import Delegation, Invitation, Membership
from portal.policy import Scope
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    OrganizationFactory,
    PartnerFactory,
)

pytestmark = pytest.mark.django_db


def _switch(client: Client, organization_id: int) -> None:
    client.post(reverse("organization-switch"), {"organization": organization_id, "next": "/"})


def _field(page: str) -> str:
    found = re.findall(rf'name="{ORGANIZATION_FIELD}" value="(\d+)"', page)
    assert found, "the page's forms carry no organization field"
    assert len(set(found)) == 1
    return found[0]


@pytest.fixture
def two_organizations(client: Client) -> tuple[Membership, Membership]:
    first = MembershipFactory(role=Membership.Role.ADMIN, organization__name="Acme")
    second = MembershipFactory(
        user=first.user, role=Membership.Role.ADMIN, organization__name="Globex"
    )
    client.force_login(first.user)
    return first, second


def test_a_partners_form_opened_before_a_switch_grants_nothing(client, two_organizations) -> None:  # type: ignore[no-untyped-def]
    first, second = two_organizations
    partner = PartnerFactory()
    _switch(client, first.organization_id)
    opened = _field(client.get(reverse("partners")).content.decode())
    assert opened == str(first.organization_id)
    _switch(client, second.organization_id)  # in another tab

    response = client.post(
        reverse("partners"),
        {
            "partner_account_number": partner.account_number,
            "scopes": [Scope.VIEW_LICENSES, Scope.OBTAIN_KEYS, Scope.MANAGE_DATA],
            ORGANIZATION_FIELD: opened,
        },
        HTTP_REFERER="http://testserver" + reverse("partners"),
    )

    assert response.status_code == 302
    assert response.url == "http://testserver/organization/partners/"
    assert not Delegation.objects.exists()
    [message] = [
        str(m) for m in get_messages(response.wsgi_request) if "Nothing was changed" in str(m)
    ]
    assert "Nothing was changed: you switched organization after this page was opened" in message
    assert "You are now working in Globex" in message
    # The page it goes back to is the organization's now, with a fresh field.
    assert _field(client.get(reverse("partners")).content.decode()) == str(second.organization_id)


def test_a_members_form_opened_before_a_switch_invites_nobody(client, two_organizations) -> None:  # type: ignore[no-untyped-def]
    first, second = two_organizations
    _switch(client, first.organization_id)
    opened = _field(client.get(reverse("members")).content.decode())
    _switch(client, second.organization_id)

    stale = {"email": "meant-for-acme@example.com", "role": "admin", ORGANIZATION_FIELD: opened}
    response = client.post(reverse("members"), stale)  # no Referer: to the dashboard

    assert response.status_code == 302 and response.url == reverse("dashboard")
    assert not Invitation.objects.exists()
    # The same form rendered for the organization in use is taken.
    current = {**stale, ORGANIZATION_FIELD: str(second.organization_id)}
    assert client.post(reverse("members"), current).status_code == 302
    assert Invitation.objects.get().organization_id == second.organization_id


def test_a_partner_stopping_to_act_for_a_customer_refuses_the_customers_open_form(client) -> None:  # type: ignore[no-untyped-def]
    partner_admin = MembershipFactory(role=Membership.Role.ADMIN, organization=PartnerFactory())
    customer = OrganizationFactory(name="Globex")
    delegation = DelegationFactory(
        partner=partner_admin.organization, customer=customer, scopes=list(Scope)
    )
    client.force_login(partner_admin.user)
    client.post(reverse("partner-act", args=[delegation.pk]))
    opened = _field(client.get(reverse("license-list")).content.decode())
    assert opened == str(customer.pk)
    client.post(reverse("partner-stop"))  # in another tab: back in the partner's own

    response = client.post(
        reverse("license-share"),
        {"licenses": [], "email": "someone@example.com", ORGANIZATION_FIELD: opened},
    )
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("you switched organization" in m for m in messages)


def test_forms_without_the_field_are_not_checked(client, two_organizations) -> None:  # type: ignore[no-untyped-def]
    # Posts that never rendered a page (tests, scripts) act in the organization in use.
    _first, second = two_organizations
    _switch(client, second.organization_id)
    client.post(reverse("members"), {"email": "new@example.com", "role": "member"})
    assert Invitation.objects.get().organization_id == second.organization_id
