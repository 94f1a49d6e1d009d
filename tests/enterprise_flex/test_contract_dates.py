"""A deployment period must leave room for the grey year after it.

Ending on 9999-12-31 with the grey year left empty (one year after the period), saving the
contract in admin was a server error on the add and the change page.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from enterprise_flex.models import EFContract
from enterprise_flex.services import EFError, contract_create
from licensing.models import add_months
from portal.models import User
from tests.enterprise_flex.factories import EFContractFactory, admin_change_data, management
from tests.portal.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

TOO_LATE = "ends too late to leave room for a grey year"


@pytest.fixture
def staff(client) -> User:  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser(email="staff@example.com", password="x")
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    ("period_end", "grey_year_end"), [("9999-12-31", ""), ("9999-06-30", "9999-12-31")]
)
def test_adding_a_contract_that_ends_too_late_is_a_form_error(  # type: ignore[no-untyped-def]
    client, staff, period_end, grey_year_end
) -> None:
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_add"),
        {
            "organization": OrganizationFactory().pk,
            "period_start": "2026-01-01",
            "period_end": period_end,
            "grey_year_end": grey_year_end,
            "status": "active",
            **management("lines", 0),
        },
    )
    assert response.status_code == 200
    assert TOO_LATE in response.content.decode()
    assert not EFContract.objects.exists()


def test_changing_a_contract_to_end_too_late_is_a_form_error(client, staff) -> None:  # type: ignore[no-untyped-def]
    contract = EFContractFactory()
    stored = contract.period_end
    data = admin_change_data(contract) | {"period_end": "9999-12-31", "grey_year_end": ""}
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk]), data
    )
    assert response.status_code == 200
    assert TOO_LATE in response.content.decode()
    contract.refresh_from_db()
    assert contract.period_end == stored


def test_the_service_refuses_it_too() -> None:
    with pytest.raises(EFError, match=TOO_LATE):
        contract_create(
            organization=OrganizationFactory(),
            period_start=date(2026, 1, 1),
            period_end=date(9999, 12, 31),
            actor=None,
        )


def test_a_period_a_year_before_the_last_date_is_fine() -> None:
    contract = contract_create(
        organization=OrganizationFactory(),
        period_start=date(9997, 1, 1),
        period_end=date(9998, 12, 31),
        actor=None,
    )
    assert contract.grey_year_end == date(9999, 12, 31)
    assert [year.number for year in contract.years()] == [1, 2]


def test_add_months_past_the_last_date_is_an_overflow() -> None:
    assert add_months(date(9998, 12, 31), 12) == date(9999, 12, 31)
    with pytest.raises(OverflowError):
        add_months(date(9999, 12, 31), 1)
