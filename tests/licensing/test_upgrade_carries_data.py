"""An upgrade (an upgrade serial for all or part of a license, or a version upgrade) copies the
license's custom values and active shares to the license it issues, in the mint; the license it
supersedes reads as history: maintenance in no state, no editing, its history naming the upgrade
and linking to the license that replaced it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from licensing.models import CustomField, CustomFieldValue, License, LicenseShare
from licensing.selectors import licenses_visible_to
from licensing.services import serial_redeem
from portal.models import AuditEvent, OutboundEmail
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    ProductVersionFactory,
    SerialNumberFactory,
)
from tests.portal.factories import MembershipFactory, UserFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine
from upgrades.services import notifications_create, upgrade_redeem

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role="admin")
    client.force_login(membership.user)
    return membership


def _with_data(license: License, admin) -> dict:  # type: ignore[no-untyped-def]
    """Two custom values, an active share with an account, one by invitation, a revoked one."""
    site = CustomField.objects.create(organization=license.owner, name="Site")
    cost = CustomField.objects.create(organization=license.owner, name="Cost centre")
    CustomFieldValue.objects.create(license=license, field=site, value="Plant North")
    CustomFieldValue.objects.create(license=license, field=cost, value="CC-42")
    reader = UserFactory()
    LicenseShare.objects.create(
        license=license, email=reader.email, user=reader, access="manage", created_by=admin.user
    )
    LicenseShare.objects.create(license=license, email="invited@example.com", created_by=admin.user)
    LicenseShare.objects.create(
        license=license, email="gone@example.com", revoked_at=timezone.now()
    )
    return {"site": site, "cost": cost, "reader": reader}


def _upgrade_serial(license: License, quantity: int):  # type: ignore[no-untyped-def]
    newer = ProductVersionFactory(
        product=license.version.product, version="99.0", released_on=timezone.localdate()
    )
    return SerialNumberFactory(version=newer, kind="upgrade", quantity=quantity)


def _redeem(admin, serial, target: License) -> License:  # type: ignore[no-untyped-def]
    return serial_redeem(
        code=serial.code,
        organization=admin.organization,
        registration=REGISTRATION,
        acting_user=admin.user,
        target_license_id=str(target.pk),
    ).license


def _values(license: License) -> dict[str, str]:
    return {v.field.name: v.value for v in license.custom_values.select_related("field")}


def _active_shares(license: License) -> dict[str, str]:
    return {s.email: s.access for s in license.shares.filter(revoked_at__isnull=True)}


def test_a_whole_upgrade_carries_custom_values_and_active_shares(admin) -> None:  # type: ignore[no-untyped-def]
    old = LicenseFactory(owner=admin.organization, quantity=10)
    data = _with_data(old, admin)
    serial = _upgrade_serial(old, 10)
    shares_emailed = OutboundEmail.objects.filter(template="license_shared").count()
    new = _redeem(admin, serial, old)
    old.refresh_from_db()
    assert old.status == License.Status.SUPERSEDED
    assert _values(new) == {"Site": "Plant North", "Cost centre": "CC-42"}
    assert _active_shares(new) == {data["reader"].email: "manage", "invited@example.com": "read"}
    assert not new.shares.filter(email="gone@example.com").exists()
    # The copies have links of their own (the token is unique), the old license keeps its own.
    assert len(set(LicenseShare.objects.values_list("token", flat=True))) == 5
    assert _values(old) == _values(new) and len(_active_shares(old)) == 2
    # The recipient with an account sees the new license at once; nobody is emailed again.
    assert licenses_visible_to(actor=data["reader"], organization=None).filter(pk=new.pk).exists()
    assert OutboundEmail.objects.filter(template="license_shared").count() == shares_emailed
    issued = AuditEvent.objects.get(action="license.issued", object_id=str(new.pk))
    assert issued.details["carried_over"] == {
        "custom_values": 2,
        "shares": [
            {"email": data["reader"].email, "access": "manage"},
            {"email": "invited@example.com", "access": "read"},
        ],
    }
    superseded = AuditEvent.objects.get(action="license.superseded", object_id=str(old.pk))
    assert superseded.details == {
        "by": str(new.pk),
        "key": old.key,
        "quantity": 10,
        "to_version": "99.0",
        "serial": serial.code,
    }


def test_a_partial_upgrade_leaves_them_on_both_licenses(admin) -> None:  # type: ignore[no-untyped-def]
    old = LicenseFactory(owner=admin.organization, quantity=10)
    _with_data(old, admin)
    new = _redeem(admin, _upgrade_serial(old, 4), old)
    old.refresh_from_db()
    assert (old.status, old.quantity) == (License.Status.ACTIVE, 6)
    assert _values(new) == _values(old) == {"Site": "Plant North", "Cost centre": "CC-42"}
    assert set(_active_shares(new)) == set(_active_shares(old))


def test_a_version_upgrade_carries_them_and_its_last_seats_name_the_notification(admin) -> None:  # type: ignore[no-untyped-def]
    old_version, new_version = catalog()
    source = licensed(admin.organization, old_version, quantity=10)
    _with_data(source, admin)
    notifications_create(version=new_version, today=timezone.localdate())
    line = UpgradeLine.objects.get()
    new = upgrade_redeem(
        line_id=line.pk,
        quantity=10,
        organization=admin.organization,
        registration=REGISTRATION,
        actor=admin.user,
        token="t",
    )
    assert _values(new) == {"Site": "Plant North", "Cost centre": "CC-42"}
    assert len(_active_shares(new)) == 2
    superseded = AuditEvent.objects.get(action="license.superseded", object_id=str(source.pk))
    assert superseded.details["notification"] == line.notification.code
    assert superseded.details["quantity"] == 10 and superseded.details["by"] == str(new.pk)


def _copies(queries: CaptureQueriesContext) -> list[str]:
    tables = ('INSERT INTO "licensing_customfieldvalue"', 'INSERT INTO "licensing_licenseshare"')
    return [q["sql"] for q in queries if q["sql"].startswith(tables)]


def test_a_license_with_nothing_to_carry_gets_nothing(admin) -> None:  # type: ignore[no-untyped-def]
    old = LicenseFactory(owner=admin.organization, quantity=10)
    serial = _upgrade_serial(old, 10)
    with CaptureQueriesContext(connection) as queries:
        new = _redeem(admin, serial, old)
    assert len(_copies(queries)) == 2  # one statement per table, whatever it copies
    assert not new.custom_values.exists() and not new.shares.exists()
    issued = AuditEvent.objects.get(action="license.issued", object_id=str(new.pk))
    assert "carried_over" not in issued.details


def test_a_new_purchase_copies_nothing(admin) -> None:  # type: ignore[no-untyped-def]
    serial, other = SerialNumberFactory(), LicenseFactory(owner=admin.organization)
    with CaptureQueriesContext(connection) as queries:
        _redeem(admin, serial, other)
    assert not _copies(queries)


# -- the superseded license's page -------------------------------------------------------------


def test_the_superseded_license_page_is_history(client, admin) -> None:  # type: ignore[no-untyped-def]
    old = LicenseFactory(owner=admin.organization, quantity=10)
    _with_data(old, admin)
    serial = _upgrade_serial(old, 10)
    new = _redeem(admin, serial, old)
    page = client.get(reverse("license-detail", kwargs={"pk": old.pk})).content.decode()
    assert "not in force" in page and ">current<" not in page
    assert "Save custom data" not in page and "Plant North" in page
    assert 'action="' + reverse("license-share") + '"' not in page
    assert 'data-testid="history-only"' in page
    assert "Edit contacts" not in page
    # Its history names the upgrade, the seats and the serial, and links to the new license.
    assert "Superseded: its 10 seats were upgraded to version 99.0" in page
    assert f"upgrade serial number {serial.code}" in page
    new_url = reverse("license-detail", kwargs={"pk": new.pk})
    assert f'href="{new_url}" data-testid="superseded-by-link"' in page
    assert f'href="{new_url}" data-testid="superseded-by"' in page
    # The new license's page says what was carried over to it.
    page = client.get(new_url).content.decode()
    assert "custom data copied from the upgraded license" in page
    assert "still shared with" in page and "invited@example.com" in page


def test_editing_a_superseded_license_is_refused_and_changes_nothing(client, admin) -> None:  # type: ignore[no-untyped-def]
    old = LicenseFactory(owner=admin.organization, quantity=10)
    data = _with_data(old, admin)
    _redeem(admin, _upgrade_serial(old, 10), old)
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": old.pk}),
        {f"cf_{data['site'].pk}": "Elsewhere"},
        follow=True,
    )
    assert "kept as history and can no longer be changed" in response.content.decode()
    assert _values(old)["Site"] == "Plant North"
    response = client.post(
        reverse("license-share"),
        {
            "licenses": [str(old.pk)],
            "back": "license-detail",
            "email": "late@example.com",
            "access": "read",
        },
        follow=True,
    )
    assert "kept as history and can no longer be changed" in response.content.decode()
    assert not LicenseShare.objects.filter(email="late@example.com").exists()
    response = client.get(reverse("license-registration", kwargs={"pk": old.pk}), follow=True)
    assert "kept as history and can no longer be changed" in response.content.decode()


def test_the_list_does_not_count_a_superseded_license_as_current_maintenance(client, admin) -> None:  # type: ignore[no-untyped-def]
    old = LicenseFactory(owner=admin.organization, quantity=10)
    new = _redeem(admin, _upgrade_serial(old, 10), old)
    page = client.get(
        reverse("license-list"), {"include": "all", "maintenance": "active"}
    ).content.decode()
    assert new.key in page and old.key not in page
    page = client.get(reverse("license-list"), {"include": "all"}).content.decode()
    assert old.key in page and "not in force" in page


def test_a_partial_upgrades_history_line_names_the_serial_and_links_the_new_license(
    client, admin
) -> None:  # type: ignore[no-untyped-def]
    # It read only "Upgraded: 4 to version 99.0": which serial, and where the seats went?
    old = LicenseFactory(owner=admin.organization, quantity=10)
    serial = _upgrade_serial(old, 4)
    new = _redeem(admin, serial, old)
    page = client.get(reverse("license-detail", kwargs={"pk": old.pk})).content.decode()
    line = page.split("Upgraded: 4 to version 99.0", 1)[1].split("</li>", 1)[0]
    assert f"upgrade serial number {serial.code}" in line
    assert reverse("license-detail", kwargs={"pk": new.pk}) in line
