"""A contract line is priced in an ISO 4217 currency; "ZZZ" was saved and shown in the true-up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from enterprise_flex.models import EFLine
from enterprise_flex.services import EFError, line_add, line_update
from portal.models import User
from tests.enterprise_flex.factories import (
    EFContractFactory,
    admin_change_data,
    make_world,
    management,
)
from tests.licensing.factories import ProductVersionFactory

pytestmark = pytest.mark.django_db

REFUSED = "is not an ISO 4217 currency code"


@pytest.fixture
def staff(client) -> User:  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser(email="staff@example.com", password="x")
    client.force_login(user)
    return user


@pytest.mark.parametrize("currency", ["ZZZ", "US$", "12"])
def test_admin_refuses_a_currency_that_is_none(client, staff, currency) -> None:  # type: ignore[no-untyped-def]
    contract = EFContractFactory()
    data = admin_change_data(contract) | {
        **management("lines", 1),
        "lines-0-version": ProductVersionFactory().pk,
        "lines-0-committed_quantity": "10",
        "lines-0-unit_value": "1.00",
        "lines-0-currency": currency,
    }
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk]), data
    )
    assert response.status_code == 200
    assert REFUSED in response.content.decode()
    assert not EFLine.objects.exists()


def test_admin_takes_a_currency_in_lower_case(client, staff) -> None:  # type: ignore[no-untyped-def]
    contract = EFContractFactory()
    data = admin_change_data(contract) | {
        **management("lines", 1),
        "lines-0-version": ProductVersionFactory().pk,
        "lines-0-committed_quantity": "10",
        "lines-0-unit_value": "1.00",
        "lines-0-currency": "brl",
    }
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk]), data
    )
    assert response.status_code == 302
    assert EFLine.objects.get().currency == "BRL"


def test_the_services_refuse_it_too() -> None:
    world = make_world()
    with pytest.raises(EFError, match=REFUSED):
        line_add(
            contract=world.contract,
            version=ProductVersionFactory(),
            committed_quantity=1,
            unit_value=Decimal(1),
            currency="ZZZ",
            actor=None,
        )
    with pytest.raises(EFError, match=REFUSED):
        line_update(
            line=world.line,
            committed_quantity=100,
            unit_value=Decimal(1),
            currency="ZZZ",
            overage_allowed=False,
            actor=None,
        )
    world.line.refresh_from_db()
    assert world.line.currency == "USD"
