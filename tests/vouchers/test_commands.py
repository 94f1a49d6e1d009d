from __future__ import annotations

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from licensing.codes import canonical_code
from portal.models import AuditEvent
from tests.licensing.factories import ProductVersionFactory
from tests.portal.factories import OrganizationFactory
from tests.vouchers.factories import PartnerFactory
from vouchers.models import Voucher, VoucherBatch

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("vouchers", "create", *args, stdout=out)
    return out.getvalue()


def test_create_prints_one_code_per_line() -> None:
    oem = PartnerFactory()
    ProductVersionFactory(product__sku="SEP-ENT", version="14.3")
    output = run(
        "--oem", oem.account_number, "--product", "SEP-ENT", "--version", "14.3",
        "--count", "7", "--quantity", "3", "--maintenance-months", "24",
        "--expires", "2027-12-31",
    )  # fmt: skip
    codes = output.splitlines()
    assert len(codes) == 7 == len(set(codes))
    assert all(canonical_code(code) == code and len(code) == 29 for code in codes)
    batch = VoucherBatch.objects.get()
    assert (batch.oem, batch.quantity_per_voucher, batch.maintenance_months) == (oem, 3, 24)
    assert batch.expires_on == date(2027, 12, 31)
    assert set(Voucher.objects.values_list("code", flat=True)) == set(codes)
    assert AuditEvent.objects.filter(action="voucher_batch.created").exists()


def test_defaults() -> None:
    oem = PartnerFactory()
    version = ProductVersionFactory()
    run("--oem", oem.account_number, "--product", version.product.sku,
        "--version", version.version, "--count", "1")  # fmt: skip
    batch = VoucherBatch.objects.get()
    assert (batch.quantity_per_voucher, batch.maintenance_months, batch.expires_on) == (1, 12, None)


@pytest.mark.parametrize(
    ("oem", "sku", "count", "message"),
    [
        ("00000000", "SKU", "1", "No organization with account number"),
        ("customer", "SKU", "1", "is not a partner organization"),
        ("partner", "NOPE", "1", "No version 1.0 of product NOPE"),
        ("partner", "SKU", "0", "between 1 and 100,000"),
    ],
)
def test_errors(oem, sku, count, message) -> None:  # type: ignore[no-untyped-def]
    ProductVersionFactory(product__sku="SKU", version="1.0")
    account = {
        "customer": OrganizationFactory().account_number,
        "partner": PartnerFactory().account_number,
    }.get(oem, oem)
    with pytest.raises(CommandError, match=message):
        run("--oem", account, "--product", sku, "--version", "1.0", "--count", count)
    assert not Voucher.objects.exists()
