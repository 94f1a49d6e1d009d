"""Concurrent delegation changes on PostgreSQL: a double click or two administrators at once
grant one delegation, and the second request gets a message, never a server error."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from portal.models import AuditEvent, Delegation, Membership
from portal.models import OutboundEmail as Email
from portal.policy import Scope
from tests.concurrency import run_concurrently
from tests.conftest import postgres_only
from tests.portal.factories import MembershipFactory, PartnerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, postgres_only()]

REQUESTS = 8


def test_concurrent_grants_to_one_partner_make_one_delegation() -> None:
    assert connection.vendor == "postgresql"
    first = MembershipFactory(role=Membership.Role.ADMIN, user__password=None)
    admins = [first] + [
        MembershipFactory(
            organization=first.organization, role=Membership.Role.ADMIN, user__password=None
        )
        for _ in range(REQUESTS - 1)
    ]
    partner = PartnerFactory()
    MembershipFactory(organization=partner, role=Membership.Role.ADMIN)
    clients = []
    for admin in admins:
        client = Client()
        client.force_login(admin.user)
        clients.append(client)

    def grant(client: Client) -> Any:
        return client.post(
            reverse("partners"),
            {"partner_account_number": partner.account_number, "scopes": [Scope.VIEW_LICENSES]},
        )

    responses = run_concurrently([lambda c=c: grant(c) for c in clients])
    errors = [r for r in responses if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert sorted(r.status_code for r in responses) == [302] + [400] * (REQUESTS - 1)
    refused = [r for r in responses if r.status_code == 400]
    assert all("already acts for you" in r.content.decode() for r in refused)
    assert Delegation.objects.count() == 1
    assert AuditEvent.objects.filter(action="delegation.granted").count() == 1
    assert Email.objects.filter(template="delegation_granted").count() == 1


def test_a_double_click_on_add_a_customer_opens_one_account() -> None:
    partner_admin = MembershipFactory(
        organization=PartnerFactory(), role=Membership.Role.ADMIN, user__password=None
    )
    clients = []
    for _ in range(REQUESTS):
        client = Client()
        client.force_login(partner_admin.user)
        clients.append(client)
    data = {
        "name": "Initech Brasil",
        "address": "Rua Funchal 200",
        "country": "BR",
        "contact_name": "Irene Initech",
        "contact_email": "irene@initech.example",
    }
    responses = run_concurrently(
        [lambda c=c: c.post(reverse("partner-customer-create"), data) for c in clients]
    )
    errors = [r for r in responses if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert sorted(r.status_code for r in responses) == [200] * (REQUESTS - 1) + [302]
    assert Delegation.objects.count() == 1
    assert Email.objects.filter(template="customer_account_created").count() == 1
