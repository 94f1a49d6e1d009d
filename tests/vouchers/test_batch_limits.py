"""A voucher batch carries at most 1,000,000 seats and 120 months per voucher, as a serial does.

The admin's batch form and voucher_batch_create took any number: a customer pasting such a code
got a server error on the Voucher center's preview (its maintenance end past the year 9999).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.licensing.factories import ProductVersionFactory
from tests.portal.factories import MembershipFactory, UserFactory
from tests.vouchers.factories import PartnerFactory, VoucherFactory
from tests.vouchers.wizard import submit_codes
from vouchers.models import Voucher, VoucherBatch
from vouchers.selectors import Reason
from vouchers.services import VoucherError, voucher_batch_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity_per_voucher", 3_000_000),
        ("quantity_per_voucher", 0),
        ("maintenance_months", 32767),
        ("maintenance_months", 121),
    ],
)
def test_the_admin_form_refuses_terms_past_the_limits(staff_client, field, value) -> None:  # type: ignore[no-untyped-def]
    data = {
        "oem": PartnerFactory().pk,
        "version": ProductVersionFactory().pk,
        "quantity_per_voucher": 1,
        "maintenance_months": 12,
        "count": 5,
    }
    response = staff_client.post(reverse("admin:vouchers_voucherbatch_add"), {**data, field: value})
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not VoucherBatch.objects.exists()


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"quantity_per_voucher": 1_000_001}, "Quantity must be from 1 to 1,000,000."),
        ({"maintenance_months": 121}, "Maintenance months must be from 0 to 120."),
    ],
)
def test_the_service_refuses_terms_past_the_limits(terms, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VoucherError, match=message):
        voucher_batch_create(
            oem=PartnerFactory(), version=ProductVersionFactory(), count=1, **terms
        )
    assert not VoucherBatch.objects.exists()


@pytest.mark.parametrize(
    "terms", [{"quantity_per_voucher": 2_000_000_000}, {"maintenance_months": 32767}]
)
def test_a_batch_stored_out_of_range_is_refused_with_words(client, terms) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory(**{f"batch__{name}": value for name, value in terms.items()})
    client.force_login(MembershipFactory().user)
    assert submit_codes(client, voucher.code).status_code == 302
    preview = client.get(reverse("voucher-center-preview"))
    assert preview.status_code == 200
    (check,) = preview.context["checks"]
    assert check.reason == Reason.TERMS
    assert "its terms are out of range" in preview.content.decode()
    voucher.refresh_from_db()
    assert voucher.status == Voucher.Status.OPEN
