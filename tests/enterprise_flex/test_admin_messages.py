"""Admin says each refusal once, in words: never "Constraint “…” is violated." beside it.

The database's checks were validated by the admin's forms as well as the forms' own friendlier
checks: a deployment period ending before it starts read the friendly sentence and the raw
constraint name; a voucher batch for 0 seats read only the constraint name.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db.models import BaseConstraint, CheckConstraint
from django.urls import reverse

from enterprise_flex.models import EFContract, EFLine
from portal.models import User
from tests.enterprise_flex.factories import EFContractFactory, admin_change_data, management
from tests.licensing.factories import ProductVersionFactory
from tests.portal.factories import OrganizationFactory
from tests.vouchers.factories import PartnerFactory
from vouchers.models import VoucherBatch

pytestmark = pytest.mark.django_db


def test_every_check_constraint_says_what_is_wrong_in_words() -> None:
    raw = [
        constraint.name
        for app in ("licensing", "vouchers", "enterprise_flex")
        for model in apps.get_app_config(app).get_models()
        for constraint in model._meta.constraints
        if isinstance(constraint, CheckConstraint)
        and constraint.violation_error_message == BaseConstraint.default_violation_error_message
    ]
    assert raw == []


@pytest.fixture
def staff(client) -> User:  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser(email="staff@example.com", password="x")
    client.force_login(user)
    return user


def _said_once(response, sentence: str) -> None:  # type: ignore[no-untyped-def]
    text = response.content.decode()
    assert "is violated" not in text
    assert text.count(sentence) == 1, text.count(sentence)


@pytest.mark.parametrize(
    ("dates", "sentence"),
    [
        (
            {"period_start": "2026-02-01", "period_end": "2026-01-01", "grey_year_end": ""},
            "must end on or after the day it starts",
        ),
        (
            {
                "period_start": "2026-01-01",
                "period_end": "2026-12-31",
                "grey_year_end": "2026-06-30",
            },
            "The grey year must end after the deployment period.",
        ),
    ],
)
def test_contract_dates(client, staff, dates, sentence) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_add"),
        {
            "organization": OrganizationFactory().pk,
            "status": "active",
            **dates,
            **management("lines", 0),
        },
    )
    assert response.status_code == 200
    _said_once(response, sentence)
    assert not EFContract.objects.exists()


@pytest.mark.parametrize(
    ("line", "sentence"),
    [
        ({"committed_quantity": "0"}, "Enter a committed quantity from 1 to"),
        ({"unit_value": "-1.00"}, "The unit value cannot be negative."),
    ],
)
def test_contract_lines(client, staff, line, sentence) -> None:  # type: ignore[no-untyped-def]
    contract = EFContractFactory()
    fields = {"committed_quantity": "10", "unit_value": "1.00", "currency": "USD", **line}
    data = admin_change_data(contract) | {
        **management("lines", 1),
        "lines-0-version": ProductVersionFactory().pk,
        **{f"lines-0-{name}": value for name, value in fields.items()},
    }
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk]), data
    )
    assert response.status_code == 200
    _said_once(response, sentence)
    assert not EFLine.objects.exists()


def test_a_voucher_batch_for_no_seats(client, staff) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("admin:vouchers_voucherbatch_add"),
        {
            "oem": PartnerFactory().pk,
            "version": ProductVersionFactory().pk,
            "quantity_per_voucher": 0,
            "maintenance_months": 12,
            "count": 5,
        },
    )
    assert response.status_code == 200
    assert "quantity_per_voucher" in response.context["adminform"].form.errors
    assert "is violated" not in response.content.decode()
    assert not VoucherBatch.objects.exists()
