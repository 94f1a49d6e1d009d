from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from licensing.codes import canonical_code
from licensing.models import License, Product, SerialNumber
from portal.models import AuditEvent, User
from tests.licensing.factories import ProductVersionFactory

pytestmark = pytest.mark.django_db


def test_serials_create_prints_one_code_per_line() -> None:
    version = ProductVersionFactory(product__sku="SEP-ENT", version="14.3")
    out = StringIO()
    call_command(
        "serials",
        "create",
        "--product",
        "SEP-ENT",
        "--version",
        "14.3",
        "--quantity",
        "50",
        "--count",
        "7",
        "--kind",
        "renewal",
        "--maintenance-months",
        "24",
        "--expires",
        "2027-12-31",
        stdout=out,
    )
    codes = out.getvalue().split()
    assert len(codes) == 7 == len(set(codes))
    assert all(canonical_code(code) == code for code in codes)
    serials = SerialNumber.objects.filter(code__in=codes)
    assert {
        (s.version_id, s.quantity, s.kind, s.maintenance_months, str(s.expires_on)) for s in serials
    } == {(version.pk, 50, "renewal", 24, "2027-12-31")}
    assert AuditEvent.objects.filter(action="serials.created").exists()


def test_serials_create_unknown_version() -> None:
    with pytest.raises(CommandError, match=r"No version 9\.9 of product NOPE"):
        call_command("serials", "create", "--product", "NOPE", "--version", "9.9", "--count", "1")


def test_serials_create_refuses_zero() -> None:
    ProductVersionFactory(product__sku="A", version="1")
    with pytest.raises(CommandError, match="between 1 and"):
        call_command("serials", "create", "--product", "A", "--version", "1", "--count", "0")


def test_seed_demo_is_idempotent() -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    counts = (Product.objects.count(), User.objects.count(), SerialNumber.objects.count())
    call_command("seed_demo", stdout=StringIO())
    assert (Product.objects.count(), User.objects.count(), SerialNumber.objects.count()) == counts
    text = out.getvalue()
    assert "alice@acme.example" in text and "demo-licensing-2026" in text
    assert "Unredeemed demo serial numbers" in text
    assert not License.objects.exists()
