"""Serial imports only create serials, and the database refuses a second redemption of one."""

from __future__ import annotations

import io

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from licensing.models import License, SerialNumber, SerialRedemption
from licensing.services import LicensingError, serial_redeem
from portal.models import AuditEvent
from tests.licensing.factories import (
    REGISTRATION,
    ProductVersionFactory,
    SerialNumberFactory,
)
from tests.licensing.wizard import walk
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "code,product,version,kind,quantity,maintenance_months,expires_on,printed_key,status\n"


@pytest.fixture
def staff(client):  # type: ignore[no-untyped-def]
    user = UserFactory(is_staff=True, is_superuser=True)
    return user


def _upload(client, text: str):  # type: ignore[no-untyped-def]
    upload = io.BytesIO(text.encode())
    upload.name = "serials.csv"
    return client.post(reverse("admin:licensing_serialnumber_import"), {"import_file": upload})


def _confirm(client):  # type: ignore[no-untyped-def]
    return client.post(reverse("admin:licensing_serialnumber_import"), {"confirm": "1"})


def test_importing_a_redeemed_serial_leaves_it_redeemed_and_reports_it(client, staff) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(product__sku="WSS-GW", version="7.2")
    serial = SerialNumberFactory(version=version)
    member = MembershipFactory()
    client.force_login(member.user)
    walk(client, serial.code)
    serial.refresh_from_db()
    license = serial.license
    assert serial.status == SerialNumber.Status.REDEEMED and license is not None

    client.force_login(staff)
    fresh = SerialNumberFactory.build().code
    # The status column is empty, as in the bug report: it used to default to "open".
    csv = (
        HEADER + f"{serial.code.lower()},WSS-GW,7.2,new,99,12,,,\n{fresh},WSS-GW,7.2,new,3,12,,,\n"
    )
    preview = _upload(client, csv)
    assert preview.status_code == 200
    page = preview.content.decode()
    assert serial.code in page and "already exists" in page
    result = _confirm(client)
    assert result.status_code == 302
    shown = " ".join(str(m) for m in result.wsgi_request._messages)
    assert serial.code in shown

    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.REDEEMED
    assert serial.quantity == 25 and serial.license == license
    assert serial.redeemed_by == member.organization
    created = SerialNumber.objects.get(code=fresh)
    assert created.status == SerialNumber.Status.OPEN and created.quantity == 3
    event = AuditEvent.objects.get(action="serials.imported")
    assert event.details["created"] == [fresh] and event.details["existing"] == [serial.code]
    assert event.actor == staff

    # Another organization cannot redeem it.
    other = MembershipFactory()
    with pytest.raises(LicensingError):
        serial_redeem(
            code=serial.code,
            organization=other.organization,
            registration=REGISTRATION,
            acting_user=other.user,
        )
    assert License.objects.filter(source_ref=serial.code).count() == 1


def test_import_reports_bad_rows_and_creates_nothing_from_them(client, staff) -> None:  # type: ignore[no-untyped-def]
    ProductVersionFactory(product__sku="WSS-GW", version="7.2")
    good = SerialNumberFactory.build().code
    csv = (
        HEADER + f"{good},WSS-GW,7.2,new,10,12,2027-01-31,,\n"
        "LEGACY-000123,WSS-GW,7.2,new,1,12,,,\n"
        "LEGACY-000124,WSS-GW,9.9,new,1,12,,,\n"  # unknown version
        "LEGACY-000125,WSS-GW,7.2,new,0,12,,,\n"  # quantity 0
        "LEGACY-000126,WSS-GW,7.2,new,1,12,,,redeemed\n"  # imports create open serials only
        f"{good},WSS-GW,7.2,new,10,12,,,\n"  # twice in the file
    )
    client.force_login(staff)
    page = _upload(client, csv).content.decode()
    assert "9.9" in page and "create it first" in page
    _confirm(client)
    assert set(SerialNumber.objects.values_list("code", flat=True)) == {good, "LEGACY000123"}
    assert SerialNumber.objects.get(code=good).expires_on.isoformat() == "2027-01-31"


def test_confirm_without_a_preview_changes_nothing(client, staff) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    response = _confirm(client)
    assert response.status_code == 302
    assert not SerialNumber.objects.exists()


def test_the_database_refuses_a_second_redemption_of_one_serial() -> None:
    serial = SerialNumberFactory()
    first, second = MembershipFactory(), MembershipFactory()
    result = serial_redeem(
        code=serial.code,
        organization=first.organization,
        registration=REGISTRATION,
        acting_user=first.user,
    )
    redemption = SerialRedemption.objects.get(serial=serial)
    assert redemption.license == result.license and redemption.organization == first.organization
    # A raw write, bypassing every Python check: the unique constraint refuses it.
    with pytest.raises(IntegrityError), transaction.atomic():
        SerialRedemption.objects.create(
            serial=serial,
            code=serial.code,
            license=result.license,
            organization=second.organization,
            redeemed_at=timezone.now(),
        )


def test_a_serial_reopened_by_any_path_cannot_be_redeemed_again() -> None:
    serial = SerialNumberFactory()
    first, second = MembershipFactory(), MembershipFactory()
    serial_redeem(
        code=serial.code,
        organization=first.organization,
        registration=REGISTRATION,
        acting_user=first.user,
    )
    # Whatever reopens it (a bad import, a hand-edited row), the redemption row stays.
    SerialNumber.objects.filter(pk=serial.pk).update(
        status=SerialNumber.Status.OPEN, redeemed_by=None, redeemed_at=None, license=None
    )
    with pytest.raises(LicensingError):
        serial_redeem(
            code=serial.code,
            organization=second.organization,
            registration=REGISTRATION,
            acting_user=second.user,
        )
    assert License.objects.count() == 1
    assert SerialRedemption.objects.filter(serial=serial).count() == 1


@pytest.mark.parametrize("kind", ["upgrade", "renewal"])
def test_every_kind_of_redemption_is_recorded(kind: str) -> None:
    member = MembershipFactory()
    old = SerialNumberFactory(kind="new")
    base = serial_redeem(
        code=old.code,
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
    ).license
    version = (
        ProductVersionFactory(product=old.version.product) if kind == "upgrade" else old.version
    )
    serial = SerialNumberFactory(kind=kind, version=version)
    result = serial_redeem(
        code=serial.code,
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        target_license_id=str(base.pk),
    )
    redemption = SerialRedemption.objects.get(serial=serial)
    assert redemption.license == result.license and redemption.kind == kind
