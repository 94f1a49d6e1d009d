"""A renewal after maintenance lapsed starts a new period on the renewal day: it does not cover
the versions released during the lapse (upgrade notifications, FileConnect), and keeps the
versions released during the paid period before it; a renewal before the end extends from the
end and keeps the start."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from fileconnect.selectors import Basis, Reason, version_entitlement
from licensing.models import License, SerialNumber, add_months
from licensing.services import license_renew
from portal.models import AuditEvent
from tests.fileconnect.factories import add_file
from tests.fileconnect.pages import download_links, license_page
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    ProductVersionFactory,
    SerialNumberFactory,
)
from tests.licensing.wizard import post_step
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import RELEASE, catalog, licensed
from upgrades.models import UpgradeLine
from upgrades.selectors import publication_preview
from upgrades.services import notifications_create, upgrade_redeem, version_publish

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("license_email_writer")]


def _lapsed(owner, version) -> License:  # type: ignore[no-untyped-def]
    """Maintenance that ended before the new version's release (RELEASE)."""
    return licensed(
        owner,
        version,
        maintenance_start=RELEASE - timedelta(days=500),
        end=RELEASE - timedelta(days=30),
    )


def test_a_lapsed_license_renewed_starts_a_new_period_today() -> None:
    member = MembershipFactory()
    old, _new = catalog()
    license = _lapsed(member.organization, old)
    old_start, old_end, old_file = (
        license.maintenance_start,
        license.maintenance_end,
        license.file_issued_at,
    )
    today = timezone.localdate()
    renewed = license_renew(
        license=license, months=12, registration=None, acting_user=member.user, reference="R-1"
    )
    license.refresh_from_db()
    assert (license.maintenance_start, license.maintenance_end) == (today, add_months(today, 12))
    assert (renewed.maintenance_start, renewed.maintenance_end) == (today, add_months(today, 12))
    assert license.file_issued_at > old_file
    event = AuditEvent.objects.get(action="license.renewed", object_id=str(license.pk))
    assert event.details == {
        "from": old_end.isoformat(),
        "to": add_months(today, 12).isoformat(),
        "start_from": old_start.isoformat(),
        "start_to": today.isoformat(),
        "reference": "R-1",
    }


def test_a_current_license_renewed_keeps_its_start_and_extends_from_its_end() -> None:
    member = MembershipFactory()
    license = LicenseFactory(owner=member.organization)
    start, end = license.maintenance_start, license.maintenance_end
    license_renew(license=license, months=12, registration=None, acting_user=None, reference="R")
    license.refresh_from_db()
    assert (license.maintenance_start, license.maintenance_end) == (start, add_months(end, 12))
    event = AuditEvent.objects.get(action="license.renewed", object_id=str(license.pk))
    assert "start_from" not in event.details and "start_to" not in event.details


def test_renewed_on_the_day_it_ends_is_an_extension() -> None:
    today = timezone.localdate()
    license = LicenseFactory(maintenance_end=today)
    start = license.maintenance_start
    assert license.renewal_period(months=3, today=today) == (start, add_months(today, 3))


def test_renewing_after_the_lapse_gives_no_upgrade_nor_files_released_during_it(
    client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory(role="admin")
    old, new = catalog()
    license = _lapsed(member.organization, old)
    add_file(new, b"fifteen" * 100, name="esh-15.exe")
    with django_capture_on_commit_callbacks(execute=True):
        version_publish(version=new, actor=None)
    assert not UpgradeLine.objects.exists()
    client.force_login(member.user)
    page = client.get(reverse("license-detail", kwargs={"pk": license.pk})).content.decode()
    assert "not eligible for the free upgrade" in page
    assert "Renewing now does not change that" in page
    assert "Renew maintenance to become eligible" not in page

    serial = SerialNumberFactory(version=old, kind=SerialNumber.Kind.RENEWAL)
    response = client.post(
        reverse("license-renew", kwargs={"pk": license.pk}), {"serial": serial.code}, follow=True
    )
    assert response.status_code == 200
    license.refresh_from_db()
    today = timezone.localdate()
    assert license.maintenance_start == today
    # The daily refresh (notifications_create) and FileConnect read start ≤ release ≤ end.
    assert notifications_create(version=new, today=today).lines == 0
    assert not UpgradeLine.objects.exists()
    client.force_login(member.user)
    assert not download_links(license_page(client, license))
    page = response.content.decode()
    assert re.search(r"Maintenance renewed after it had ended: [^<]+ → [^<]+", page)
    # The page now says the version came out before this maintenance began.
    assert 'data-testid="upgrade-before-maintenance"' in page


def test_get_a_key_confirms_a_lapsed_renewal_with_the_new_period(client) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory()
    client.force_login(member.user)
    old, _new = catalog()
    license = _lapsed(member.organization, old)
    serial = SerialNumberFactory(version=old, kind=SerialNumber.Kind.RENEWAL, maintenance_months=6)
    client.get(reverse("get-a-key"))
    page = post_step(client, "serial", {"serial": serial.code})
    form = page.context["wizard"]["form"]
    data = {name: form.initial.get(name, "") for name in form.fields if name != "target_license"}
    confirm = post_step(client, "registration", {**data, "target_license": str(license.pk)})
    assert confirm.context["maintenance_start"] == timezone.localdate()
    assert confirm.context["maintenance_end"] == add_months(timezone.localdate(), 6)
    assert post_step(client, "confirm").status_code == 302
    license.refresh_from_db()
    assert license.maintenance_start == timezone.localdate()


def _renewed_after_a_lapse(owner):  # type: ignore[no-untyped-def]
    """The reviewer's case, as days before today: maintenance ~2025-06-01 to 2026-06-01, 15.0
    released ~2026-03-01 (during it), 15.1 ~2026-10-05 (during the lapse), renewed today."""
    today = timezone.localdate()
    old, during = catalog()
    during.released_on = today - timedelta(days=278)
    during.save()
    lapse = ProductVersionFactory(
        product=old.product, version="15.1", released_on=today - timedelta(days=60)
    )
    license = licensed(
        owner,
        old,
        maintenance_start=today - timedelta(days=551),
        end=today - timedelta(days=186),
    )
    first_start, first_end = license.maintenance_start, license.maintenance_end
    license_renew(license=license, months=12, registration=None, acting_user=None, reference="R")
    license.refresh_from_db()
    assert (license.maintenance_start, license.maintenance_end) == (today, add_months(today, 12))
    assert (license.earlier_maintenance_start, license.earlier_maintenance_end) == (
        first_start,
        first_end,
    )
    return license, during, lapse


def test_a_lapsed_renewal_keeps_the_versions_released_during_the_paid_period_before() -> None:
    member = MembershipFactory()
    license, during, lapse = _renewed_after_a_lapse(member.organization)
    today = timezone.localdate()
    assert version_entitlement(Basis(license=license), during, today=today).entitled
    refused = version_entitlement(Basis(license=license), lapse, today=today)
    assert refused is not None and not refused.entitled
    assert refused.reason == Reason.DURING_LAPSE
    assert license.covers(during.released_on) and not license.covers(lapse.released_on)
    # Free upgrade eligibility (the daily refresh, the publication preview) reads the same.
    assert notifications_create(version=during, today=today).lines == 1
    assert notifications_create(version=lapse, today=today).lines == 0
    assert publication_preview(version=during).licenses == 1
    assert publication_preview(version=lapse).licenses == 0


def test_fileconnect_serves_the_earlier_periods_version_not_the_lapses(client) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory()
    license, during, lapse = _renewed_after_a_lapse(member.organization)
    earned = add_file(during, b"fifteen" * 100, name="esh-15.exe")
    missed = add_file(lapse, b"fifteen-one" * 100, name="esh-15.1.exe")
    client.force_login(member.user)
    response = license_page(client, license)
    links = download_links(response)
    assert earned.pk in links and missed.pk not in links
    assert client.get(links[earned.pk]).status_code == 200
    assert "released while this license's maintenance had lapsed" in response.content.decode()
    page = client.get(reverse("license-detail", kwargs={"pk": license.pk})).content.decode()
    assert 'data-testid="earlier-maintenance"' in page


def test_a_version_upgrade_carries_the_earlier_period() -> None:
    member = MembershipFactory(role="admin")
    license, during, lapse = _renewed_after_a_lapse(member.organization)
    notifications_create(version=during, today=timezone.localdate())
    line = UpgradeLine.objects.get(source_license=license)
    upgraded = upgrade_redeem(
        line_id=line.pk,
        quantity=license.quantity,
        organization=member.organization,
        registration=REGISTRATION,
        actor=member.user,
        token="t",
    )
    assert upgraded.maintenance_start == license.maintenance_start
    assert (upgraded.earlier_maintenance_start, upgraded.earlier_maintenance_end) == (
        license.earlier_maintenance_start,
        license.earlier_maintenance_end,
    )
    assert not upgraded.covers(lapse.released_on)


def test_a_second_lapse_keeps_only_the_paid_period_before_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Paid period A, lapse, renewal B, lapse, renewal C. The earlier period was stretched from
    # A's start to B's end: the version released during the first lapse became covered.
    member = MembershipFactory()
    today = timezone.localdate()
    product = ProductVersionFactory(released_on=today - timedelta(days=1100)).product
    own = product.versions.get()

    def released(days_ago: int, name: str):  # type: ignore[no-untyped-def]
        return ProductVersionFactory(
            product=product, version=name, released_on=today - timedelta(days=days_ago)
        )

    in_a, in_lapse_1, in_b, in_lapse_2, in_c = (
        released(900, "A"),
        released(700, "lapse 1"),
        released(500, "B"),
        released(300, "lapse 2"),
        released(100, "C"),
    )
    license = licensed(
        member.organization,
        own,
        maintenance_start=today - timedelta(days=1000),
        end=today - timedelta(days=800),
    )
    for days_ago, months in ((600, 6), (200, 12)):
        day = today - timedelta(days=days_ago)
        monkeypatch.setattr(timezone, "localdate", lambda *args, day=day: day)
        license = license_renew(
            license=license, months=months, registration=None, acting_user=None, reference="R"
        )
    monkeypatch.undo()
    license.refresh_from_db()
    assert not license.covers(in_lapse_1.released_on)
    # The rule kept: B (the paid period before the latest lapse) and C are covered, neither
    # lapse is, and A no longer is (one earlier period is kept, not a list of them).
    expected = {in_a: False, in_lapse_1: False, in_b: True, in_lapse_2: False, in_c: True}
    assert {v.version: license.covers(v.released_on) for v in expected} == {
        v.version: covered for v, covered in expected.items()
    }
    b_start = today - timedelta(days=600)
    assert (license.earlier_maintenance_start, license.earlier_maintenance_end) == (
        b_start,
        add_months(b_start, 6),
    )
    assert license.maintenance_start == today - timedelta(days=200)
    # The queries say the same: covering() (FileConnect, the publication preview) and the
    # SQL of the daily refresh (upgrades.services._COVERS_SQL).
    for version, covered in expected.items():
        filtered = License.objects.filter(License.covering(version.released_on), pk=license.pk)
        assert filtered.exists() == covered, version
        assert publication_preview(version=version).licenses == int(covered), version
        assert notifications_create(version=version, today=today).lines == int(covered), version
    assert not version_entitlement(Basis(license=license), in_lapse_1, today=today).entitled
