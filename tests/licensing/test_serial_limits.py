"""A serial carries at most 1,000,000 seats and 120 months of maintenance, however it is made.

Generate and import refused more; the admin's add and change form did not, and a customer then
got a license for 2,000,000,000 seats, or maintenance to the year 4757 (past the year 9999, the
Get a key wizard failed with a server error).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from licensing.models import License, SerialNumber, generate_code
from tests.licensing.factories import ProductVersionFactory, SerialNumberFactory
from tests.licensing.wizard import post_step
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _serial_form(version, **fields):  # type: ignore[no-untyped-def]
    return {
        "code": generate_code(),
        "version": version.pk,
        "kind": "new",
        "quantity": "1",
        "maintenance_months": "12",
        "printed_key": "",
        "expires_on": "",
        **fields,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "2000000000"),
        ("quantity", "1000001"),
        ("quantity", "0"),
        ("maintenance_months", "32767"),
        ("maintenance_months", "121"),
    ],
)
def test_the_admin_form_refuses_what_generate_and_import_refuse(staff_client, field, value) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    response = staff_client.post(
        reverse("admin:licensing_serialnumber_add"), _serial_form(version, **{field: value})
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not SerialNumber.objects.exists()


def test_the_admin_form_takes_the_limits_themselves(staff_client) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    response = staff_client.post(
        reverse("admin:licensing_serialnumber_add"),
        _serial_form(version, quantity="1000000", maintenance_months="120"),
    )
    assert response.status_code == 302
    assert SerialNumber.objects.get().quantity == 1_000_000


def test_maintenance_months_cannot_be_raised_past_the_limit_on_change(staff_client) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    response = staff_client.post(
        reverse("admin:licensing_serialnumber_change", args=[serial.pk]),
        {"maintenance_months": "32767", "printed_key": "", "expires_on": ""},
    )
    assert response.status_code == 200
    assert "maintenance_months" in response.context["adminform"].form.errors
    serial.refresh_from_db()
    assert serial.maintenance_months == 12


@pytest.mark.parametrize("terms", [{"quantity": 2_000_000_000}, {"maintenance_months": 32767}])
def test_a_serial_stored_out_of_range_is_refused_with_words(client, terms) -> None:  # type: ignore[no-untyped-def]
    # Stored before the limits held everywhere: the customer reads why, nobody gets the license.
    serial = SerialNumberFactory(**terms)
    client.force_login(MembershipFactory().user)
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": serial.code})
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "serial"
    assert "its terms are out of range" in str(response.context["wizard"]["form"].errors)
    assert not License.objects.exists()
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN
