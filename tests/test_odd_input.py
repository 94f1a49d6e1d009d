"""The odd inputs that gave 500s: each now gets a clear message (or a 404) and changes nothing."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue, SupportRegistration
from portal.models import Organization
from tests.licensing.factories import REGISTRATION, LicenseFactory, SerialNumberFactory
from tests.licensing.wizard import post_step
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role="admin")
    client.force_login(membership.user)
    return membership


@pytest.mark.parametrize(
    "raw", ["1e999999", "9" * 5000, "-1e-999999", "1" + "0" * 40, "0." + "0" * 60 + "1"]
)
def test_a_custom_number_too_large_or_too_long_gets_a_message(client, admin, raw) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=admin.organization)
    field = CustomField.objects.create(
        organization=admin.organization, name="Seats", field_type="number"
    )
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": license.pk}), {f"cf_{field.pk}": raw}
    )
    assert response.status_code == 400
    assert "Seats must be a number" in response.content.decode()
    assert not CustomFieldValue.objects.exists()
    # The list's filter on that field takes the same input without failing.
    assert client.get(reverse("license-list"), {f"cf_{field.pk}": raw}).status_code == 200


def test_a_custom_number_within_bounds_is_kept_exactly(client, admin) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=admin.organization)
    field = CustomField.objects.create(
        organization=admin.organization, name="Seats", field_type="number"
    )
    value = "1234567890123456789012345.125"
    client.post(
        reverse("license-custom-values", kwargs={"pk": license.pk}), {f"cf_{field.pk}": value}
    )
    assert CustomFieldValue.objects.get().value == value


def test_a_nul_in_a_custom_data_csv_gets_a_message(client, admin) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=admin.organization)
    CustomField.objects.create(organization=admin.organization, name="Site")
    for content in (f"key,Site\n{license.key},Rec\x00ife\n", f"key,Site\n{license.key}\x00,x\n"):
        upload = io.BytesIO(content.encode())
        upload.name = "data.csv"
        response = client.post(reverse("custom-values-csv"), {"file": upload})
        assert response.status_code == 200
        assert "not a CSV file" in response.content.decode()
    assert not CustomFieldValue.objects.exists()


@pytest.mark.parametrize("path", ["/invitations/abc%00def/", "/licenses/shared/abc%00def/"])
def test_a_nul_in_a_token_is_a_not_found(client, path) -> None:  # type: ignore[no-untyped-def]
    assert client.get(path).status_code == 404
    client.force_login(MembershipFactory().user)
    assert client.get(path).status_code == 404
    assert client.post(path).status_code == 404


@pytest.mark.parametrize("target", ["foo", "dashboard", "license-list", "//evil.example/", ""])
def test_organization_switch_with_an_odd_next_goes_to_the_dashboard(client, admin, target) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("organization-switch"), {"organization": admin.organization_id, "next": target}
    )
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")


def test_organization_switch_keeps_a_local_next(client, admin) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("organization-switch"),
        {"organization": admin.organization_id, "next": "/licenses/"},
    )
    assert response["Location"] == "/licenses/"


def test_address_fields_are_capped(client, admin) -> None:  # type: ignore[no-untyped-def]
    huge = "Rua " + "A" * 1_000_000
    serial = SerialNumberFactory()
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": serial.code})
    response = post_step(client, "registration", {**REGISTRATION, "address": huge})
    assert response.context["wizard"]["steps"].current == "registration"
    assert "at most 500 characters" in response.content.decode()
    license = LicenseFactory(owner=admin.organization)
    data = {name: getattr(license.registration, name) for name in REGISTRATION}
    response = client.post(
        reverse("license-registration", kwargs={"pk": license.pk}), {**data, "address": huge}
    )
    assert response.status_code == 200 and "at most 500 characters" in response.content.decode()
    assert not SupportRegistration.objects.filter(address=huge).exists()
    response = client.post(
        reverse("organization-create") + "?new=1", {"name": "Big Co", "address": huge}
    )
    assert response.status_code == 200 and "at most 500 characters" in response.content.decode()
    assert not Organization.objects.filter(name="Big Co").exists()
