"""The license file of a superseded or revoked license: no signed file is issued for it any
more. Its download is refused with the reason and the way to the license that replaced it, as
FileConnect refuses its software; its page offers no download; superseding or revoking a
license does not move its file's date (no file was issued then)."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from licensing.models import License, SerialNumber
from licensing.services import licenses_revoke, serial_redeem
from portal.models import Membership
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.portal.factories import MembershipFactory, UserFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine
from upgrades.services import notifications_create, upgrade_redeem

pytestmark = pytest.mark.django_db

BEGIN = "-----BEGIN LICENSE FILE-----"


@pytest.fixture
def admin(client: Client) -> Membership:
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(membership.user)
    return membership


def _page(client: Client, name: str, license: License):  # type: ignore[no-untyped-def]
    return client.get(reverse(name, args=[license.pk]))


def test_a_superseded_licenses_file_is_refused_and_points_to_its_successor(client, admin) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    source = licensed(admin.organization, old, quantity=5)
    file_issued = source.file_issued_at
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=5)
    successor = serial_redeem(
        code=serial.code,
        organization=admin.organization,
        registration=REGISTRATION,
        acting_user=admin.user,
        target_license_id=str(source.pk),
    ).license
    source.refresh_from_db()
    assert source.status == License.Status.SUPERSEDED
    # A freshly signed file for the replaced key, with the date of its last valid one, read as
    # that file again: refused instead.
    response = _page(client, "license-file", source)
    assert response.status_code == 410
    assert "Content-Disposition" not in response
    page = html.unescape(response.content.decode())
    assert BEGIN not in page
    assert "This license was superseded by an upgrade" in page
    assert "Download the license file of the license that replaced it" in page
    assert reverse("license-detail", args=[successor.pk]) in page
    assert BEGIN in _page(client, "license-file", successor).content.decode()
    # Its page offers no download, and its file's date is the last one issued.
    detail = html.unescape(_page(client, "license-detail", source).content.decode())
    assert reverse("license-file", args=[source.pk]) not in detail
    assert "Last license file" in detail and "Current license file" not in detail
    assert source.file_issued_at == file_issued


def test_a_revoked_licenses_file_is_refused(client, admin) -> None:  # type: ignore[no-untyped-def]
    old, _new = catalog()
    license = licensed(admin.organization, old)
    file_issued = license.file_issued_at
    assert _page(client, "license-file", license).status_code == 200
    licenses_revoke(license_ids=[license.pk], reason="Refund", actor=UserFactory())
    response = _page(client, "license-file", license)
    assert response.status_code == 410
    page = html.unescape(response.content.decode())
    assert BEGIN not in page
    assert "This license was revoked" in page and "contact customer care" in page
    assert "replaced it" not in page
    detail = html.unescape(_page(client, "license-detail", license).content.decode())
    assert reverse("license-file", args=[license.pk]) not in detail
    license.refresh_from_db()
    assert license.file_issued_at == file_issued


def test_the_last_seats_upgraded_issue_no_file(client, admin) -> None:  # type: ignore[no-untyped-def]
    # A version upgrade of part of a license reissues its file with the seats left; one of
    # the rest supersedes it: no file is issued for 0 seats, and its date stays the last file's.
    old, new = catalog()
    source = licensed(admin.organization, old, quantity=5)
    notifications_create(version=new, today=timezone.localdate())

    def upgrade(quantity: int, token: str) -> None:
        upgrade_redeem(
            line_id=UpgradeLine.objects.get(source_license=source).pk,
            quantity=quantity,
            organization=admin.organization,
            registration=REGISTRATION,
            actor=admin.user,
            token=token,
        )
        source.refresh_from_db()

    upgrade(2, "part")
    reissued = source.file_issued_at
    upgrade(3, "rest")
    assert source.status == License.Status.SUPERSEDED
    assert source.file_issued_at == reissued
    assert _page(client, "license-file", source).status_code == 410
