"""Staff edits of serials, products and versions in admin: checked and audited, and what a
license was issued from stays as it was issued."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing.models import Product, ProductVersion, SerialNumber
from licensing.services import LicensingError, serial_change, version_staff_change
from portal.models import AuditEvent
from tests.licensing.factories import (
    LicenseFactory,
    ProductFactory,
    ProductVersionFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
)
from tests.portal.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _redeemed(serial: SerialNumber) -> SerialNumber:
    license = LicenseFactory(version=serial.version)
    SerialNumber.objects.filter(pk=serial.pk).update(
        status=SerialNumber.Status.REDEEMED,
        redeemed_by=license.owner,
        redeemed_at=timezone.now(),
        license=license,
    )
    serial.refresh_from_db()
    return serial


@pytest.mark.parametrize("status", ["redeemed", "void"])
def test_a_redeemed_or_void_serial_is_read_only(staff_client, status) -> None:  # type: ignore[no-untyped-def]
    # Serial 32 (redeemed): maintenance months, redeem-before date and printed key could be
    # changed after redemption, and then contradicted the license it issued.
    serial = SerialNumberFactory(maintenance_months=12)
    if status == "redeemed":
        _redeemed(serial)
    else:
        SerialNumber.objects.filter(pk=serial.pk).update(status=SerialNumber.Status.VOID)
    url = reverse("admin:licensing_serialnumber_change", args=[serial.pk])
    page = staff_client.get(url).content.decode()
    for field in ("maintenance_months", "expires_on", "printed_key"):
        assert f'name="{field}"' not in page
    response = staff_client.post(
        url, {"maintenance_months": "36", "expires_on": "2001-01-01", "printed_key": "FORGED"}
    )
    assert response.status_code == 302
    serial.refresh_from_db()
    assert (serial.maintenance_months, serial.expires_on, serial.printed_key) == (12, None, "")
    assert not AuditEvent.objects.filter(action="serial.changed").exists()


def test_a_serial_redeemed_while_staff_edit_it_is_refused() -> None:
    serial = SerialNumberFactory(maintenance_months=12)
    edited = SerialNumber.objects.get(pk=serial.pk)  # what the admin form read: open
    _redeemed(serial)
    edited.maintenance_months = 36
    with pytest.raises(LicensingError, match="redeemed or voided meanwhile"):
        serial_change(serial=edited, fields=["maintenance_months"], actor=None)
    serial.refresh_from_db()
    assert serial.maintenance_months == 12 and serial.status == SerialNumber.Status.REDEEMED


def _product_form(product: Product, **changes: str) -> dict[str, str]:
    data = {
        "sku": product.sku,
        "name": product.name,
        "family": product.family,
        "node_locked": "on" if product.node_locked else "",
        "license_model": product.license_model,
        "rehost_limit": str(product.rehost_limit),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_a_product_changed_in_admin_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Product 2: node_locked and rehost_limit changed (rules every license of it follows),
    # with no audit event.
    product = ProductFactory(node_locked=False, rehost_limit=3)
    url = reverse("admin:licensing_product_change", args=[product.pk])
    response = staff_client.post(url, _product_form(product, node_locked="on", rehost_limit="9"))
    assert response.status_code == 302
    product.refresh_from_db()
    assert (product.node_locked, product.rehost_limit) == (True, 9)
    event = AuditEvent.objects.get(action="product.changed")
    assert event.actor is not None and event.actor.is_staff
    assert (event.object_type, event.object_id) == ("licensing.product", str(product.pk))
    assert event.details["changes"] == {
        "node_locked": {"from": False, "to": True},
        "rehost_limit": {"from": 3, "to": 9},
    }
    staff_client.post(url, _product_form(product))  # unchanged: nothing to audit
    assert AuditEvent.objects.filter(action="product.changed").count() == 1


def test_versions_are_not_changed_on_the_product_page(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Its inline saved a version's release date with no audit event and no check.
    version = ProductVersionFactory(released_on=date(2026, 1, 15))
    url = reverse("admin:licensing_product_change", args=[version.product.pk])
    page = staff_client.get(url).content.decode()
    assert 'name="versions-0-released_on"' not in page
    response = staff_client.post(
        url,
        _product_form(
            version.product,
            **{
                "versions-TOTAL_FORMS": "1",
                "versions-INITIAL_FORMS": "1",
                "versions-0-id": str(version.pk),
                "versions-0-product": str(version.product.pk),
                "versions-0-version": version.version,
                "versions-0-released_on": "2020-01-01",
            },
        ),
    )
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.released_on == date(2026, 1, 15)


def _version_form(version: ProductVersion, **changes: str) -> dict[str, str]:
    return {
        "product": str(version.product_id),
        "version": version.version,
        "released_on": version.released_on.isoformat(),
        **changes,
    }


def test_a_version_changed_in_admin_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(released_on=date(2026, 1, 15))
    url = reverse("admin:licensing_productversion_change", args=[version.pk])
    response = staff_client.post(url, _version_form(version, released_on="2026-02-01"))
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.released_on == date(2026, 2, 1)
    event = AuditEvent.objects.get(action="version.changed")
    assert event.details["changes"] == {"released_on": {"from": "2026-01-15", "to": "2026-02-01"}}
    assert event.details["version"] == version.version


def test_a_published_version_keeps_its_release_date(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Version 2 (published): changing released_on changed who may upgrade, unaudited.
    version = ProductVersionFactory(released_on=date(2026, 1, 15), published_at=timezone.now())
    url = reverse("admin:licensing_productversion_change", args=[version.pk])
    assert 'name="released_on"' not in staff_client.get(url).content.decode()
    response = staff_client.post(url, _version_form(version, released_on="2020-01-01"))
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.released_on == date(2026, 1, 15)
    assert not AuditEvent.objects.filter(action="version.changed").exists()
    # Published between the page and the save: the service refuses it under its lock.
    edited = ProductVersion.objects.get(pk=version.pk)
    edited.released_on = date(2020, 1, 1)
    with pytest.raises(LicensingError, match="published"):
        version_staff_change(version=edited, fields=["released_on"], actor=None)


def test_a_refusal_in_the_save_reads_as_a_message(staff_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(released_on=date(2026, 1, 15))
    url = reverse("admin:licensing_productversion_change", args=[version.pk])
    from licensing import admin as licensing_admin

    # The page was read before publication; the version is published as the save runs.
    real = licensing_admin.version_staff_change

    def published_meanwhile(**kwargs):  # type: ignore[no-untyped-def]
        ProductVersion.objects.filter(pk=version.pk).update(published_at=timezone.now())
        return real(**kwargs)

    monkeypatch.setattr(licensing_admin, "version_staff_change", published_meanwhile)
    response = staff_client.post(url, _version_form(version, released_on="2020-01-01"), follow=True)
    assert response.status_code == 200
    assert "can no longer change" in response.content.decode()
    version.refresh_from_db()
    assert version.released_on == date(2026, 1, 15)


def test_a_version_stays_with_its_product(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Changing a version's product moved its serials and licenses to another product.
    version = ProductVersionFactory()
    license = LicenseFactory(version=version)
    other = ProductFactory()
    url = reverse("admin:licensing_productversion_change", args=[version.pk])
    assert 'name="product"' not in staff_client.get(url).content.decode()
    version.product = other
    with pytest.raises(LicensingError, match="stays with the product"):
        version_staff_change(version=version, fields=["product"], actor=None)
    license.refresh_from_db()
    assert license.version.product_id != other.pk
    assert not AuditEvent.objects.filter(action="version.changed").exists()


def test_a_registration_corrected_in_admin_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    registration = SupportRegistrationFactory(technical_email="old@customer.example")
    url = reverse("admin:licensing_supportregistration_change", args=[registration.pk])
    form = {
        name: getattr(registration, name)
        for name in (
            "company",
            "address",
            "primary_name",
            "primary_email",
            "primary_phone",
            "technical_name",
            "technical_phone",
        )
    }
    response = staff_client.post(
        url,
        {
            **form,
            "organization": registration.organization_id,
            "country": str(registration.country),
            "technical_email": "new@customer.example",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    registration.refresh_from_db()
    assert registration.technical_email == "new@customer.example"
    event = AuditEvent.objects.get(action="registration.changed")
    assert event.details["changes"] == {
        "technical_email": {"from": "old@customer.example", "to": "new@customer.example"}
    }
    assert event.organization_id == registration.organization_id


def test_what_staff_add_in_admin_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    # Additions got only Django's log entry: the audit trail missed new products, versions
    # (on their own page or the product's), registrations, organizations and logins.
    response = staff_client.post(
        reverse("admin:licensing_product_add"),
        {
            "sku": "NEW-SKU-1",
            "name": "New Product",
            "family": "",
            "license_model": "perpetual",
            "rehost_limit": "3",
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "0",
            "versions-0-version": "1.0",
            "versions-0-released_on": "2026-01-01",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    product = Product.objects.get(sku="NEW-SKU-1")
    created = dict(AuditEvent.objects.values_list("action", "object_id"))
    assert created["product.created"] == str(product.pk)
    assert created["version.created"] == str(product.versions.get().pk)
    response = staff_client.post(
        reverse("admin:portal_user_add"),
        {
            "email": "new.staff@vendor.example",
            "password1": "x-Long-pass-2026!",
            "password2": "x-Long-pass-2026!",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(action="user.created")
    assert event.details["email"] == "new.staff@vendor.example"
