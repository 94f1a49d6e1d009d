"""The license page: a badge per status; upgraded seats said in words, not "Quantity 0"."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing.models import License
from portal.models import Membership
from tests.licensing.factories import REGISTRATION, LicenseFactory
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine
from upgrades.services import notifications_create, upgrade_redeem

pytestmark = pytest.mark.django_db

BADGE = re.compile(r'<span class="badge (text-bg-[a-z]+)">([^<]+)</span>')


def _quantity_cell(html: str) -> str:
    start = html.index('data-testid="license-quantity"')
    return re.sub(r"\s+", " ", html[start : html.index("</dd>", start)])


@pytest.fixture
def admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN)


def test_every_status_has_its_own_badge(client, admin) -> None:  # type: ignore[no-untyped-def]
    client.force_login(admin.user)
    colours = {}
    for status in License.Status:
        license = LicenseFactory(owner=admin.organization)
        License.objects.filter(pk=license.pk).update(status=status)
        html = client.get(reverse("license-detail", args=[license.pk])).content.decode()
        badges = {label.strip(): colour for colour, label in BADGE.findall(html)}
        assert str(status.label) in badges, status
        colours[status] = badges[str(status.label)]
        # The list draws the same badge for the same status.
        listed = client.get(reverse("license-list"), {"status": status.value})
        if listed.status_code == 200 and str(license.key) in listed.content.decode():
            assert f'<span class="badge {colours[status]}">{status.label}</span>' in (
                listed.content.decode()
            )
    assert colours[License.Status.ACTIVE] == "text-bg-success"
    assert len(set(colours.values())) == len(License.Status), colours


def _upgrade(admin: Membership, quantities: list[int]) -> tuple[License, list[License]]:
    old, new = catalog()
    source = licensed(admin.organization, old, quantity=sum(quantities))
    notifications_create(version=new, today=timezone.localdate())
    line = UpgradeLine.objects.get(source_license=source)
    upgraded = [
        upgrade_redeem(
            line_id=line.pk,
            quantity=quantity,
            organization=admin.organization,
            registration=REGISTRATION,
            actor=admin.user,
            token=f"token-{index}",
        )
        for index, quantity in enumerate(quantities)
    ]
    source.refresh_from_db()
    return source, upgraded


def test_a_wholly_upgraded_license_says_where_its_seats_went(client, admin) -> None:  # type: ignore[no-untyped-def]
    source, upgraded = _upgrade(admin, [3, 2])
    assert source.quantity == 0 and source.status == License.Status.SUPERSEDED
    client.force_login(admin.user)
    html = client.get(reverse("license-detail", args=[source.pk])).content.decode()
    cell = _quantity_cell(html)
    assert "All 5 seats were upgraded to" in cell
    for new in upgraded:
        assert reverse("license-detail", args=[new.pk]) in cell
    assert "> 0 <" not in cell and not re.search(r">\s*0\s*<", cell)


def test_only_an_active_license_offers_its_software(client, admin) -> None:  # type: ignore[no-untyped-def]
    # A wholly upgraded license offered "Download the software", which led to a bare 404; its
    # FileConnect page (also linked from its emails) now leads to the licenses that replaced it.
    source, upgraded = _upgrade(admin, [3, 2])
    client.force_login(admin.user)
    for new in upgraded:
        html = client.get(reverse("license-detail", args=[new.pk])).content.decode()
        assert 'data-testid="license-downloads"' in html
    html = client.get(reverse("license-detail", args=[source.pk])).content.decode()
    assert 'data-testid="license-downloads"' not in html
    replaced = client.get(reverse("fileconnect-license", args=[source.pk]))
    assert replaced.status_code == 410
    text = replaced.content.decode()
    assert "was replaced by an upgrade" in text
    for new in upgraded:
        assert reverse("fileconnect-license", args=[new.pk]) in text
    revoked = LicenseFactory(owner=admin.organization)
    License.objects.filter(pk=revoked.pk).update(status=License.Status.REVOKED)
    html = client.get(reverse("license-detail", args=[revoked.pk])).content.decode()
    assert 'data-testid="license-downloads"' not in html
    page = client.get(reverse("fileconnect-license", args=[revoked.pk]))
    assert page.status_code == 410 and "was revoked" in page.content.decode()


def test_a_partly_upgraded_license_shows_what_is_left_and_what_went(client, admin) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    source = licensed(admin.organization, old, quantity=10)
    notifications_create(version=new, today=timezone.localdate())
    line = UpgradeLine.objects.get(source_license=source)
    upgrade_redeem(
        line_id=line.pk,
        quantity=4,
        organization=admin.organization,
        registration=REGISTRATION,
        actor=admin.user,
        token="t",
    )
    client.force_login(admin.user)
    cell = _quantity_cell(client.get(reverse("license-detail", args=[source.pk])).content.decode())
    assert cell.split(">", 1)[1].strip().startswith("6")
    assert "4 more seats were upgraded to" in cell


def test_a_partly_upgraded_license_is_not_called_superseded(client, admin) -> None:  # type: ignore[no-untyped-def]
    # 20 of 25 seats upgraded: the page said Active with 5 seats and also "Superseded by
    # Endpoint Protection 15.0", and "20 more seats were upgraded to version 15.0 (20)".
    source, (new,) = _upgrade_part(admin, quantity=25, upgraded=20)
    assert (source.status, source.quantity) == (License.Status.ACTIVE, 5)
    client.force_login(admin.user)
    html = client.get(reverse("license-detail", args=[source.pk])).content.decode()
    assert "Superseded by" not in html
    cell = _quantity_cell(html)
    link = f'<a href="{reverse("license-detail", args=[new.pk])}">version 15.0</a>'
    assert f"20 more seats were upgraded to {link}" in cell
    assert "(20)" not in cell
    # The other 5 upgraded too: superseded, and it says so; two licenses took its seats, each
    # named with its count.
    upgrade_redeem(
        line_id=UpgradeLine.objects.get(source_license=source).pk,
        quantity=5,
        organization=admin.organization,
        registration=REGISTRATION,
        actor=admin.user,
        token="rest",
    )
    html = client.get(reverse("license-detail", args=[source.pk])).content.decode()
    assert "Superseded by" in html
    assert "version 15.0 (20)" in _quantity_cell(html) and "version 15.0 (5)" in html


def _upgrade_part(
    admin: Membership, *, quantity: int, upgraded: int
) -> tuple[License, list[License]]:
    old, new = catalog()
    source = licensed(admin.organization, old, quantity=quantity)
    notifications_create(version=new, today=timezone.localdate())
    line = UpgradeLine.objects.get(source_license=source)
    new_license = upgrade_redeem(
        line_id=line.pk,
        quantity=upgraded,
        organization=admin.organization,
        registration=REGISTRATION,
        actor=admin.user,
        token="part",
    )
    source.refresh_from_db()
    return source, [new_license]


def test_seats_taken_by_an_upgrade_serial_are_linked_like_a_version_upgrades(client, admin) -> None:  # type: ignore[no-untyped-def]
    # A 4-seat upgrade serial applied to a 10-seat license, then a version upgrade of the 6
    # left. The page said "All 10 seats were upgraded to version 15.0 (6)": the serial's
    # license was left out (only licenses with source "upgrade" were listed), and after the
    # serial alone it said "4 more seats were upgraded to a newer version", with no link. The
    # serial's result page called the license it took 4 seats of, still active with 6,
    # "Supersedes", as if its key no longer worked.
    from licensing.models import SerialNumber
    from licensing.services import serial_redeem
    from tests.licensing.factories import SerialNumberFactory

    old, new = catalog()
    source = licensed(admin.organization, old, quantity=10)
    notifications_create(version=new, today=timezone.localdate())
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=4)
    by_serial = serial_redeem(
        code=serial.code,
        organization=admin.organization,
        registration=REGISTRATION,
        acting_user=admin.user,
        target_license_id=str(source.pk),
    ).license
    client.force_login(admin.user)
    result = re.sub(
        r"\s+", " ", client.get(reverse("get-a-key-result", args=[by_serial.pk])).content.decode()
    )
    assert f'Upgraded from</dt> <dd class="col-sm-8 font-monospace">{source.key}' in result
    assert "Supersedes" not in result
    cell = _quantity_cell(client.get(reverse("license-detail", args=[source.pk])).content.decode())
    assert "4 more seats were upgraded to" in cell
    assert reverse("license-detail", args=[by_serial.pk]) in cell and "a newer version" not in cell
    by_notification = upgrade_redeem(
        line_id=UpgradeLine.objects.get(source_license=source).pk,
        quantity=6,
        organization=admin.organization,
        registration=REGISTRATION,
        actor=admin.user,
        token="t",
    )
    cell = _quantity_cell(client.get(reverse("license-detail", args=[source.pk])).content.decode())
    assert "All 10 seats were upgraded to" in cell
    assert "version 15.0 (4)" in cell and "version 15.0 (6)" in cell
    for upgraded in (by_serial, by_notification):
        assert reverse("license-detail", args=[upgraded.pk]) in cell


def test_a_license_replaced_by_an_upgrade_serial_lists_no_upgraded_seats(client, admin) -> None:  # type: ignore[no-untyped-def]
    # An upgrade serial for all its seats replaces the license: its page keeps its quantity,
    # and its result page says "Supersedes".
    from licensing.models import SerialNumber
    from licensing.services import serial_redeem
    from tests.licensing.factories import SerialNumberFactory

    old, new = catalog()
    source = licensed(admin.organization, old, quantity=5)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=5)
    new_license = serial_redeem(
        code=serial.code,
        organization=admin.organization,
        registration=REGISTRATION,
        acting_user=admin.user,
        target_license_id=str(source.pk),
    ).license
    client.force_login(admin.user)
    cell = _quantity_cell(client.get(reverse("license-detail", args=[source.pk])).content.decode())
    assert cell.split(">", 1)[1].strip() == "5"
    result = client.get(reverse("get-a-key-result", args=[new_license.pk])).content.decode()
    assert "Supersedes" in result and "Upgraded from" not in result


def test_upgraded_seats_are_counted_however_long_the_history(client, admin) -> None:  # type: ignore[no-untyped-def]
    # The page lists the latest 100 events, and counted the upgraded seats from that list: a
    # license upgraded in full and then emailed, shared or edited 100 times more read
    # "Quantity 0" again, and one upgraded in part lost its "4 more seats were upgraded".
    from portal.services import audit_record

    source, upgraded = _upgrade(admin, [3, 2])
    for _ in range(100):
        audit_record(action="license.emailed", actor=admin.user, obj=source)
    client.force_login(admin.user)
    cell = _quantity_cell(client.get(reverse("license-detail", args=[source.pk])).content.decode())
    assert "All 5 seats were upgraded to" in cell
    for new in upgraded:
        assert reverse("license-detail", args=[new.pk]) in cell


def _predecessor_row(html: str) -> str:
    """The license facts' row naming the license this one came from: "<label> <key>"."""
    match = re.search(
        r'<dt class="col-sm-4">\s*([^<]+?)\s*</dt>\s*<dd class="col-sm-8 font-monospace[^"]*">'
        r"\s*([A-Z0-9-]+)",
        html,
    )
    assert match, "no predecessor row"
    return f"{match[1]} {match[2]}"


def test_the_license_page_names_the_predecessor_as_the_result_page_does(client, admin) -> None:  # type: ignore[no-untyped-def]
    # An upgrade serial for 4 of 10 seats: the older license stays active with 6 under its key.
    # The result page said "Upgraded from", the new license's own page "Supersedes", as if the
    # older key no longer worked. Both read the rule from one place (License.replaces_whole).
    from licensing.models import SerialNumber
    from licensing.services import serial_redeem
    from tests.licensing.factories import SerialNumberFactory

    old, new = catalog()
    client.force_login(admin.user)

    def redeem(source: License, quantity: int) -> License:
        serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=quantity)
        return serial_redeem(
            code=serial.code,
            organization=admin.organization,
            registration=REGISTRATION,
            acting_user=admin.user,
            target_license_id=str(source.pk),
        ).license

    def rows(license: License) -> tuple[str, str]:
        return tuple(  # type: ignore[return-value]
            _predecessor_row(client.get(reverse(name, args=[license.pk])).content.decode())
            for name in ("license-detail", "get-a-key-result")
        )

    partly = licensed(admin.organization, old, quantity=10)
    part = redeem(partly, 4)
    assert rows(part) == (f"Upgraded from {partly.key}",) * 2
    # Revoked since: it was never superseded by this license, which still came from it.
    License.objects.filter(pk=partly.pk).update(status=License.Status.REVOKED)
    assert rows(part) == (f"Upgraded from {partly.key}",) * 2
    # An upgrade serial for all its seats replaces the license: both pages say "Supersedes".
    wholly = licensed(admin.organization, old, quantity=5)
    whole = redeem(wholly, 5)
    assert rows(whole) == (f"Supersedes {wholly.key}",) * 2
    # A version upgrade moves seats, whatever their number: "Upgraded from" on both.
    source, (by_notification,) = _upgrade_part(admin, quantity=3, upgraded=3)
    assert source.status == License.Status.SUPERSEDED
    assert rows(by_notification) == (f"Upgraded from {source.key}",) * 2
