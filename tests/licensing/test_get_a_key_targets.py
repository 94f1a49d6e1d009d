"""Get a key with a renewal or upgrade serial: which licenses it may apply to, named in full."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse

from licensing.models import License, ProductVersion, SerialNumber
from portal.models import Membership, Organization, User
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    ProductVersionFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
)
from tests.licensing.wizard import post_step, walk
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client) -> Membership:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def _errors(response, field: str) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(e) for e in response.context["wizard"]["form"].errors.get(field, []))


def _two_licenses(member: Membership) -> tuple[ProductVersion, License, License]:
    version = ProductVersionFactory(version="14.3")
    first = LicenseFactory(
        owner=member.organization,
        version=version,
        maintenance_end=date.today() + timedelta(days=30),
        registration=SupportRegistrationFactory(
            organization=member.organization, company="Plant North"
        ),
    )
    second = LicenseFactory(
        owner=member.organization,
        version=version,
        maintenance_end=date.today() + timedelta(days=90),
        registration=SupportRegistrationFactory(
            organization=member.organization, company="Plant South"
        ),
    )
    return version, first, second


def test_several_renewal_targets_are_radios_none_chosen(client, member) -> None:  # type: ignore[no-untyped-def]
    version, first, second = _two_licenses(member)
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL)
    client.get(reverse("get-a-key"))
    page = post_step(client, "serial", {"serial": serial.code})
    html = page.content.decode()
    radios = re.findall(r'<input[^>]*name="registration-target_license"[^>]*>', html)
    assert len(radios) == 2
    assert not any("checked" in radio for radio in radios)
    for license, company in ((first, "Plant North"), (second, "Plant South")):
        assert license.key in html
        assert company in html
    assert version.product.name in html and "14.3" in html

    refused = post_step(client, "registration", REGISTRATION)
    assert refused.context["wizard"]["steps"].current == "registration"
    assert "Choose the license this serial number renews." in _errors(refused, "target_license")

    confirm = post_step(client, "registration", {**REGISTRATION, "target_license": str(second.pk)})
    assert confirm.context["wizard"]["steps"].current == "confirm"
    target = confirm.content.decode().split('data-testid="target-license"', 1)[1].split("</dd>")[0]
    assert second.key in target and first.key not in target
    assert f"{version.product.name} version 14.3" in target
    assert "Registered to Plant South" in target
    assert "Maintenance until" in target


def test_a_single_target_is_chosen_for_the_user(client, member) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=member.organization)
    serial = SerialNumberFactory(version=license.version, kind=SerialNumber.Kind.RENEWAL)
    client.get(reverse("get-a-key"))
    html = post_step(client, "serial", {"serial": serial.code}).content.decode()
    radios = re.findall(r'<input[^>]*name="registration-target_license"[^>]*>', html)
    assert len(radios) == 1 and "checked" in radios[0]


def test_ef_drawdown_keys_are_never_renewal_or_upgrade_targets(client, member) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(version="14.3")
    newer = ProductVersionFactory(product=version.product, version="15.0")
    ef_key = LicenseFactory(owner=member.organization, version=version, source="ef_drawdown")
    for kind, serial_version in (
        (SerialNumber.Kind.RENEWAL, version),
        (SerialNumber.Kind.UPGRADE, newer),
    ):
        serial = SerialNumberFactory(version=serial_version, kind=kind)
        client.get(reverse("get-a-key"))
        refused = post_step(client, "serial", {"serial": serial.code})
        assert "Enterprise Flexible contract" in _errors(refused, "serial")
    # Beside a key from a serial, the EF key is not offered.
    own = LicenseFactory(owner=member.organization, version=version)
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL)
    client.get(reverse("get-a-key"))
    html = post_step(client, "serial", {"serial": serial.code}).content.decode()
    assert own.key in html and ef_key.key not in html


def test_an_upgrade_serial_never_targets_a_newer_version(client, member) -> None:  # type: ignore[no-untyped-def]
    old = ProductVersionFactory(version="14.3", released_on=date(2025, 1, 1))
    newer = ProductVersionFactory(product=old.product, version="16.0", released_on=date(2026, 6, 1))
    middle = ProductVersionFactory(
        product=old.product, version="15.0", released_on=date(2026, 1, 1)
    )
    LicenseFactory(owner=member.organization, version=newer)
    serial = SerialNumberFactory(version=middle, kind=SerialNumber.Kind.UPGRADE)
    client.get(reverse("get-a-key"))
    refused = post_step(client, "serial", {"serial": serial.code})
    assert "already at version 15.0 or later" in _errors(refused, "serial")


def test_globex_demo_with_endpoint_protection_15_is_told_the_truth(client) -> None:  # type: ignore[no-untyped-def]
    """The demo as reported: Globex holds active Endpoint Protection 15.0 licenses, obtained
    with a new purchase and an upgrade serial, and types the other upgrade serial."""
    for command in ("seed_demo", "seed_demo_upgrades", "seed_demo_partners"):
        call_command(command, stdout=open("/dev/null", "w"))  # noqa: SIM115
    globex = Organization.objects.get(name="Globex Logistics")
    client.force_login(User.objects.get(email="carol@globex.example"))
    open_serials = SerialNumber.objects.filter(
        status=SerialNumber.Status.OPEN, version__product__name="Endpoint Protection"
    )
    new = open_serials.filter(kind=SerialNumber.Kind.NEW, version__version="14.3").first()
    upgrades = list(open_serials.filter(kind=SerialNumber.Kind.UPGRADE, version__version="15.0"))
    assert new is not None and len(upgrades) >= 2
    walk(client, new.code)
    original = License.objects.get(owner=globex, source_ref=new.code)
    walk(client, upgrades[0].code, registration={"target_license": str(original.pk)})
    active = License.objects.filter(owner=globex, status=License.Status.ACTIVE)
    assert [str(lic.version.version) for lic in active] == ["15.0"]

    client.get(reverse("get-a-key"))
    refused = post_step(client, "serial", {"serial": upgrades[1].code})
    message = _errors(refused, "serial")
    assert "has no active one" not in message
    assert "already at version 15.0 or later" in message
    assert "Endpoint Protection" in message


def test_an_ef_key_is_not_renewed_from_its_page_either(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(admin.user)
    ef_key = LicenseFactory(owner=admin.organization, source="ef_drawdown")
    LicenseFactory(owner=admin.organization, version=ef_key.version)
    serial = SerialNumberFactory(version=ef_key.version, kind=SerialNumber.Kind.RENEWAL)
    end = ef_key.maintenance_end
    response = client.post(
        reverse("license-renew", args=[ef_key.pk]), {"serial": serial.code}, follow=True
    )
    assert "drawn down from an Enterprise Flexible contract" in response.content.decode()
    ef_key.refresh_from_db()
    serial.refresh_from_db()
    assert ef_key.maintenance_end == end and serial.status == SerialNumber.Status.OPEN
