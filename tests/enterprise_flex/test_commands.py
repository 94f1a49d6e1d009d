"""`manage.py ef_contracts` for scripts and the demo; `seed_demo_ef` is idempotent."""

from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from enterprise_flex.models import EFContract
from portal.models import AuditEvent
from tests.licensing.factories import ProductVersionFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("ef_contracts", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_contract_number() -> None:
    ProductVersionFactory(product__sku="SEP-ENT", version="15.0")
    admin = MembershipFactory(role="admin")
    account = admin.organization.account_number
    number = run(
        "create", "--customer", account, "--product", "SEP-ENT", "--version", "15.0",
        "--committed", "500", "--overage", "--years", "2", "--start", "2026-01-01",
        "--super-user", admin.user.email.upper(), "--unit-value", "38.50",
    ).strip()  # fmt: skip
    contract = EFContract.objects.get()
    assert number == contract.number
    assert (contract.period_start, contract.period_end) == (date(2026, 1, 1), date(2027, 12, 31))
    assert contract.grey_year_end == date(2028, 12, 31)
    line = contract.lines.get()
    assert (line.committed_quantity, line.overage_allowed, str(line.unit_value)) == (
        500,
        True,
        "38.50",
    )
    assert contract.users.get().user == admin.user and contract.users.get().level == "super"
    assert contract.sites.get().name == "Main site"
    assert AuditEvent.objects.filter(action="ef.contract_created").exists()
    ProductVersionFactory(product__sku="WSS-GW", version="7.2")
    again = run(
        "add-line", "--contract", number, "--product", "WSS-GW", "--version", "7.2",
        "--committed", "200",
    ).strip()  # fmt: skip
    assert again == number and contract.lines.count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customer", "00000000"], "No organization with account number"),
        (["--product", "NOPE"], "No version 15.0 of product NOPE"),
        (["--committed", "0"], "committed quantity from 1"),
        (["--years", "0"], "--years must be from 1 to 10"),
        (["--super-user", "ghost@example.com"], "No user ghost@example.com"),
        (["--super-user", "OUTSIDER"], "is not a user of"),
        (["--unit-value", "ten"], "is not an amount"),
    ],
)
def test_create_refuses_bad_arguments_and_creates_nothing(args, message) -> None:  # type: ignore[no-untyped-def]
    ProductVersionFactory(product__sku="SEP-ENT", version="15.0")
    admin = MembershipFactory(role="admin")
    outsider = MembershipFactory()
    options = {"--customer": admin.organization.account_number, "--product": "SEP-ENT",
               "--version": "15.0", "--committed": "10"}  # fmt: skip
    for key, value in zip(args[::2], args[1::2], strict=True):
        options[key] = outsider.user.email if value == "OUTSIDER" else value
    argv = ["create", *[part for pair in options.items() for part in pair]]
    with pytest.raises(CommandError, match=message):
        run(*argv)
    assert not EFContract.objects.exists()


def test_seed_demo_ef_is_idempotent() -> None:
    call_command("seed_demo", stdout=StringIO())
    first = StringIO()
    call_command("seed_demo_ef", stdout=first)
    call_command("seed_demo_ef", stdout=StringIO())
    contract = EFContract.objects.get()
    assert contract.organization.name == "Acme Manufacturing"
    assert contract.lines.count() == 3
    levels = dict(contract.users.values_list("user__email", "level"))
    assert levels == {"alice@acme.example": "super", "bob@acme.example": "contract"}
    assert "alice@acme.example is its super user" in first.getvalue()
    # Year 1 ends within 60 days: its report can be submitted in the demo.
    year = contract.year(1)
    assert year is not None and (year.end - date.today()).days <= 60
