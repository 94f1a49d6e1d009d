"""A customer's custom fields and values are its own data: a channel partner reads them only
with the manage-data scope (portal.policy: VIEW_CUSTOM_FIELDS), on every page that shows them."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from licensing.models import CustomField, License
from licensing.services import custom_values_set
from portal.models import Delegation, Membership
from portal.policy import Scope
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory

pytestmark = pytest.mark.django_db

FIELD = "Internal cost center"
SECRET = "CC-SECRET-4711 (layoffs budget)"


@pytest.fixture
def customer_admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN)


@pytest.fixture
def partner_admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN, organization=PartnerFactory())


def _secret_license(customer_admin: Membership, **extra: object) -> tuple[License, CustomField]:
    field = CustomField.objects.create(organization=customer_admin.organization, name=FIELD)
    license = LicenseFactory(owner=customer_admin.organization, **extra)
    custom_values_set(
        licenses=[license], values={field.pk: SECRET}, actor=customer_admin.user, fields=[field]
    )
    return license, field


def _acting(
    client: Client, partner_admin: Membership, customer_admin: Membership, scopes: list[str]
) -> Delegation:
    delegation = DelegationFactory(
        customer=customer_admin.organization, partner=partner_admin.organization, scopes=scopes
    )
    client.force_login(partner_admin.user)
    client.post(reverse("partner-act", args=[delegation.pk]))
    return delegation


def _surfaces(client: Client, license: License, field: CustomField) -> dict[str, str]:
    """Every page that shows the owner's custom data, by name: its text."""
    xlsx = client.get(reverse("license-export", args=["xlsx"]))
    with zipfile.ZipFile(io.BytesIO(b"".join(xlsx.streaming_content))) as book:
        # The workbook's XML parts, its cells' text among them.
        cells = " ".join(book.read(name).decode() for name in book.namelist())
    return {
        "page": client.get(reverse("license-detail", args=[license.pk])).content.decode(),
        "list": client.get(reverse("license-list")).content.decode(),
        "csv": b"".join(
            client.get(reverse("license-export", args=["csv"])).streaming_content
        ).decode(),
        "xlsx": cells,
    }


def test_a_view_licenses_partner_never_sees_the_customers_custom_data(
    client: Client, customer_admin: Membership, partner_admin: Membership
) -> None:
    license, field = _secret_license(customer_admin)
    _acting(client, partner_admin, customer_admin, [Scope.VIEW_LICENSES])
    for name, text in _surfaces(client, license, field).items():
        assert license.key[-5:] in text, name  # the license itself is there
        assert "CC-SECRET-4711" not in text, name
        assert FIELD not in text, name
    # Not as a list filter or sort either, nor through the search.
    page = client.get(reverse("license-list"), {f"cf_{field.pk}": "layoffs"}).content.decode()
    assert f'name="cf_{field.pk}"' not in page
    found = client.get(reverse("license-list"), {"q": "layoffs"}).content.decode()
    assert license.key[-5:] not in found
    # Not in the license's history ("Custom data changed ... by the customer's admin").
    history = client.get(reverse("license-detail", args=[license.pk])).content.decode()
    assert "Custom data changed" not in history
    # Nor a link to the customer's custom fields, which would refuse it.
    listed = client.get(reverse("license-list")).content.decode()
    assert reverse("custom-fields") not in listed
    # The search's help names only what the partner's search looks in.
    assert "Key, serial number, host ID or contact." in listed
    assert "custom value" not in listed


def test_an_obtain_keys_partner_never_sees_the_custom_data_of_a_key_it_obtained(
    client: Client, customer_admin: Membership, partner_admin: Membership
) -> None:
    license, _field = _secret_license(customer_admin, acting_user=partner_admin.user)
    _acting(client, partner_admin, customer_admin, [Scope.OBTAIN_KEYS])
    response = client.get(reverse("license-detail", args=[license.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "CC-SECRET-4711" not in page
    assert FIELD not in page
    assert "Custom data changed" not in page


def test_a_manage_data_partner_still_sees_and_searches_the_custom_data(
    client: Client, customer_admin: Membership, partner_admin: Membership
) -> None:
    license, field = _secret_license(customer_admin)
    _acting(client, partner_admin, customer_admin, [Scope.VIEW_LICENSES, Scope.MANAGE_DATA])
    for name, text in _surfaces(client, license, field).items():
        assert "CC-SECRET-4711" in text, name
        assert FIELD in text, name
    found = client.get(reverse("license-list"), {"q": "layoffs"}).content.decode()
    assert license.key[-5:] in found
    assert "Key, serial number, host ID, contact or custom value." in found
    filtered = client.get(reverse("license-list"), {f"cf_{field.pk}": "layoffs"}).content.decode()
    assert license.key[-5:] in filtered
    assert (
        "Custom data changed"
        in client.get(reverse("license-detail", args=[license.pk])).content.decode()
    )


def test_the_customers_own_member_sees_the_custom_data(
    client: Client, customer_admin: Membership
) -> None:
    license, field = _secret_license(customer_admin)
    member = MembershipFactory(
        organization=customer_admin.organization, role=Membership.Role.MEMBER
    )
    client.force_login(member.user)
    for name, text in _surfaces(client, license, field).items():
        assert "CC-SECRET-4711" in text, name


def test_the_partner_reads_the_license_page_from_its_own_side(
    client: Client, customer_admin: Membership, partner_admin: Membership
) -> None:
    _acting(client, partner_admin, customer_admin, [Scope.OBTAIN_KEYS])
    license = LicenseFactory(owner=customer_admin.organization, acting_user=partner_admin.user)
    License.objects.filter(pk=license.pk).update(partner=partner_admin.organization)
    page = client.get(reverse("license-detail", args=[license.pk])).content.decode()
    assert f"Your organization, for {customer_admin.organization.name}" in page
    assert "your channel partner, on your behalf" not in page
    # No "My licenses" breadcrumb for a partner that may not list them (it was a 403).
    assert f'href="{reverse("license-list")}"' not in page
    client.force_login(customer_admin.user)
    page = client.get(reverse("license-detail", args=[license.pk])).content.decode()
    assert "your channel partner, on your behalf" in page
    assert f'href="{reverse("license-list")}"' in page
