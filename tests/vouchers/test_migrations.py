"""vouchers 0003: a conversion's JSON list of licenses becomes VoucherConversionLicense rows."""

from __future__ import annotations

import importlib
import uuid

import pytest
from django.apps import apps

from licensing.models import License
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import convert_separately, vouchers
from vouchers.models import VoucherConversion, VoucherConversionLicense
from vouchers.selectors import conversion_licenses

pytestmark = pytest.mark.django_db

migration = importlib.import_module("vouchers.migrations.0003_conversion_licenses")


def _item(license: License, codes: list[str]) -> dict[str, object]:
    return {
        "id": str(license.pk),
        "key": license.key,
        "product": license.version.product.name,
        "sku": license.version.product.sku,
        "version": license.version.version,
        "quantity": license.quantity,
        "maintenance_end": license.maintenance_end.isoformat(),
        "codes": codes,
    }


def test_json_licenses_become_rows_in_order_and_back() -> None:
    membership = MembershipFactory()
    batch = vouchers(3)
    result = convert_separately(membership, [v.code for v in batch])
    conversion = result.conversion
    issued = conversion_licenses(conversion)
    codes = {v.license_id: [v.code] for v in type(batch[0]).objects.all()}
    # As 0002 stored it: a JSON list, here in reverse order, with a license that no longer
    # exists (skipped, not a crash) and a refused code (kept).
    refused = [{"code": "X", "reason": "unknown", "params": {}}]
    legacy = [_item(lic, codes[lic.pk]) for lic in reversed(issued)]
    gone = {**legacy[0], "id": str(uuid.uuid4())}
    VoucherConversionLicense.objects.all().delete()
    VoucherConversion.objects.filter(pk=conversion.pk).update(
        result={"licenses": [*legacy, gone], "refused": refused}
    )
    untouched = VoucherConversion.objects.create(organization=membership.organization)

    migration.licenses_to_rows(apps, None)

    conversion.refresh_from_db()
    assert conversion.result == {"refused": refused}
    assert conversion_licenses(conversion) == list(reversed(issued))
    untouched.refresh_from_db()
    assert untouched.result == {} and not untouched.issued.exists()

    migration.rows_to_licenses(apps, None)

    conversion.refresh_from_db()
    assert conversion.result == {"refused": refused, "licenses": legacy}
