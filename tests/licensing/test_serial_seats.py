"""Upgrade and renewal serials against the seats of the license they apply to.

An upgrade serial for 50 seats applied to a 15-seat license issued a 50-seat license (35 seats
from nothing); a 10-seat renewal serial renewed a 250-seat license; a confirmation page that
said "5 of its 20 seats" superseded a license that had 2 by then; an upgrade threw away the
maintenance a renewal had paid for.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing.models import License, ProductVersion, SerialNumber, add_months
from licensing.services import (
    SerialError,
    SerialTargetError,
    license_renew_with_serial,
    serial_redeem,
    target_licenses,
)
from portal.models import AuditEvent, Membership, OutboundEmail
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    ProductVersionFactory,
    SerialNumberFactory,
)
from tests.licensing.wizard import post_step, walk
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client) -> Membership:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


@pytest.fixture
def versions() -> tuple[ProductVersion, ProductVersion]:
    old = ProductVersionFactory(version="14.3", released_on=date(2025, 1, 15))
    return old, ProductVersionFactory(product=old.product, version="15.0")


def _license(member: Membership, version: ProductVersion, quantity: int, **kwargs) -> License:  # type: ignore[no-untyped-def]
    return LicenseFactory(owner=member.organization, version=version, quantity=quantity, **kwargs)


def _redeem(member: Membership, serial: SerialNumber, target: License, **kwargs):  # type: ignore[no-untyped-def]
    return serial_redeem(
        code=serial.code,
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        target_license_id=str(target.pk),
        **kwargs,
    )


def _assert_nothing_changed(serial: SerialNumber, target: License, licenses: int) -> None:
    serial.refresh_from_db()
    before = (target.quantity, target.status, target.maintenance_end, target.file_issued_at)
    target.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN and serial.license_id is None
    assert License.objects.count() == licenses
    assert (target.quantity, target.status, target.maintenance_end, target.file_issued_at) == (
        before
    )
    assert not OutboundEmail.objects.exists()
    assert not AuditEvent.objects.filter(action__in=["serial.redeemed", "license.renewed"]).exists()


# -- upgrade serials ---------------------------------------------------------------------------


def test_an_upgrade_serial_for_more_seats_than_the_license_is_refused(member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    target = _license(member, old, 15)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=50)
    with pytest.raises(SerialTargetError) as refused:
        _redeem(member, serial, target)
    message = str(refused.value)
    assert "This upgrade serial number is for 50 seats" in message
    assert f"license {target.key[-5:]}" not in message  # the key is masked…
    assert target.key.rsplit("-", 1)[1] in message and "has 15" in message  # …to its last group
    assert "Choose a license with at least 50 seats, or contact customer care." in message
    _assert_nothing_changed(serial, target, licenses=1)


def test_an_upgrade_serial_for_all_the_seats_replaces_the_license(member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    target = _license(member, old, 15)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=15)
    issued = _redeem(member, serial, target).license
    target.refresh_from_db()
    assert (issued.quantity, issued.supersedes) == (15, target)
    assert target.status == License.Status.SUPERSEDED


def test_upgrade_targets_are_licenses_with_at_least_the_serials_seats(member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    small = _license(member, old, 15)
    exact = _license(member, old, 50)
    large = _license(member, old, 60)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=50)
    offered = set(target_licenses(serial=serial, organization=member.organization))
    assert offered == {exact, large}
    assert small in target_licenses(serial=serial, organization=member.organization, any_seats=True)


def test_upgrade_keeps_the_maintenance_already_paid_for(member, versions) -> None:  # type: ignore[no-untyped-def]
    # Renewed to two years from now, then upgraded with a 12-month serial: the new license's
    # maintenance ended a year from now.
    old, new = versions
    today = timezone.localdate()
    renewed_to = add_months(today, 24)
    started = today - timedelta(days=100)
    for quantity in (10, 4):  # the whole license, and part of it
        target = _license(member, old, 10, maintenance_start=started, maintenance_end=renewed_to)
        serial = SerialNumberFactory(
            version=new, kind=SerialNumber.Kind.UPGRADE, quantity=quantity, maintenance_months=12
        )
        issued = _redeem(member, serial, target).license
        assert (issued.maintenance_start, issued.maintenance_end) == (started, renewed_to)


def test_upgrade_maintenance_runs_the_serials_months_when_that_is_later(member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    today = timezone.localdate()
    current = _license(member, old, 10, maintenance_end=today + timedelta(days=30))
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=10)
    issued = _redeem(member, serial, current).license
    assert issued.maintenance_start == current.maintenance_start
    assert issued.maintenance_end == add_months(today, 12)
    # Lapsed: no gap is covered, the period starts today.
    lapsed = _license(
        member,
        old,
        10,
        maintenance_start=today - timedelta(days=500),
        maintenance_end=today - timedelta(days=10),
    )
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=10)
    issued = _redeem(member, serial, lapsed).license
    assert (issued.maintenance_start, issued.maintenance_end) == (today, add_months(today, 12))


def test_a_license_whose_seats_changed_since_the_confirmation_is_refused(member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    target = _license(member, old, 2)  # the page showed 20; another session upgraded 18
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=2)
    with pytest.raises(SerialTargetError, match="now has 2 seats, not 20"):
        _redeem(member, serial, target, target_quantity=20)
    _assert_nothing_changed(serial, target, licenses=1)
    # As shown, it goes through.
    assert _redeem(member, serial, target, target_quantity=2).license.quantity == 2


# -- renewal serials ---------------------------------------------------------------------------


def test_a_renewal_serial_for_fewer_seats_than_the_license_is_refused(member, versions) -> None:  # type: ignore[no-untyped-def]
    version, _new = versions
    target = _license(member, version, 250)
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL, quantity=10)
    with pytest.raises(SerialTargetError) as refused:
        _redeem(member, serial, target)
    message = str(refused.value)
    assert "This renewal serial number is for 10 seats" in message and "has 250" in message
    assert "at least 250 seats, or contact customer care" in message
    _assert_nothing_changed(serial, target, licenses=1)


def test_a_renewal_serial_for_one_seat_reads_in_the_singular(member, versions) -> None:  # type: ignore[no-untyped-def]
    version, _new = versions
    target = _license(member, version, 50)
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL, quantity=1)
    with pytest.raises(SerialTargetError, match="is for 1 seat, and license"):
        _redeem(member, serial, target)


def test_a_renewal_serial_for_as_many_seats_or_more_renews(member, versions) -> None:  # type: ignore[no-untyped-def]
    version, _new = versions
    for quantity in (10, 25):
        target = _license(member, version, 10)
        end = target.maintenance_end
        serial = SerialNumberFactory(
            version=version, kind=SerialNumber.Kind.RENEWAL, quantity=quantity
        )
        assert _redeem(member, serial, target).renewed
        target.refresh_from_db()
        assert target.maintenance_end == add_months(end, serial.maintenance_months)


def test_renewal_targets_are_licenses_with_at_most_the_serials_seats(member, versions) -> None:  # type: ignore[no-untyped-def]
    version, _new = versions
    small = _license(member, version, 5)
    exact = _license(member, version, 10)
    _license(member, version, 250)
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL, quantity=10)
    assert set(target_licenses(serial=serial, organization=member.organization)) == {small, exact}


def test_renewal_from_the_license_page_applies_the_same_rule(client, member, versions) -> None:  # type: ignore[no-untyped-def]
    version, _new = versions
    target = _license(member, version, 50)
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL, quantity=1)
    with pytest.raises(SerialError, match=r"is for 1 seat, and license .* has 50"):
        license_renew_with_serial(
            license=target, code=serial.code, organization=member.organization, actor=member.user
        )
    _assert_nothing_changed(serial, target, licenses=1)
    # The page says it at the serial field.
    response = client.post(
        reverse("license-renew", kwargs={"pk": target.pk}), {"serial": serial.code}
    )
    assert response.status_code == 400
    page = " ".join(response.content.decode().split())
    assert "This renewal serial number is for 1 seat" in page and "has 50" in page
    _assert_nothing_changed(serial, target, licenses=1)


# -- the wizard --------------------------------------------------------------------------------


def _radios(html: str) -> list[str]:
    return re.findall(r'<input[^>]*name="registration-target_license"[^>]*>', html)


def test_the_wizard_offers_only_licenses_the_serial_fits(client, member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    small = _license(member, old, 15)
    large = _license(member, old, 60)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=50)
    client.get(reverse("get-a-key"))
    html = post_step(client, "serial", {"serial": serial.code}).content.decode()
    assert len(_radios(html)) == 1 and str(large.pk) in _radios(html)[0]
    assert small.key not in html
    # Posting the license it does not offer is refused by the form.
    refused = post_step(client, "registration", {**REGISTRATION, "target_license": str(small.pk)})
    assert refused.context["wizard"]["steps"].current == "registration"
    assert "target_license" in refused.context["wizard"]["form"].errors
    assert not License.objects.filter(source_ref=serial.code).exists()


def test_the_serial_step_says_when_no_license_has_the_seats(client, member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    _license(member, old, 15)
    upgrade = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=50)
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": upgrade.code})
    errors = " ".join(response.context["wizard"]["form"].errors["serial"])
    assert "This upgrade serial number is for 50 seats" in errors
    renewal = SerialNumberFactory(version=old, kind=SerialNumber.Kind.RENEWAL, quantity=1)
    response = post_step(client, "serial", {"serial": renewal.code})
    errors = " ".join(response.context["wizard"]["form"].errors["serial"])
    assert "This renewal serial number is for 1 seat, and each of" in errors


def test_the_confirmation_states_the_seats_and_the_maintenance(client, member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    today = timezone.localdate()
    renewed_to = add_months(today, 24)
    target = _license(member, old, 15, maintenance_end=renewed_to)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=15)
    page = walk(
        client, serial.code, registration={"target_license": str(target.pk)}, confirm=False
    ).content.decode()
    seats = page.split('data-testid="upgrade-seats"', 1)[1].split("</p>")[0]
    assert "15 of its 15 seats are upgraded" in " ".join(seats.split())
    assert f"{target.maintenance_start.isoformat()} – {renewed_to.isoformat()}" in page

    version = ProductVersionFactory()
    renewed = _license(member, version, 10)
    renewal = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL, quantity=25)
    page = walk(
        client, renewal.code, registration={"target_license": str(renewed.pk)}, confirm=False
    ).content.decode()
    seats = " ".join(page.split('data-testid="renewal-seats"', 1)[1].split("</p>")[0].split())
    assert "All 10 of its seats are renewed" in seats and "this serial number is for 25" in seats


def _confirm_page(client, serial: SerialNumber, target: License) -> None:  # type: ignore[no-untyped-def]
    page = walk(
        client, serial.code, registration={"target_license": str(target.pk)}, confirm=False
    ).content.decode()
    assert f"5 of its {target.quantity} seats are upgraded" in " ".join(page.split())


def test_a_stale_confirmation_lets_the_user_choose_again(client, member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    target = _license(member, old, 20)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=5)
    _confirm_page(client, serial, target)
    # Another session upgrades 10 of its seats meanwhile.
    License.objects.filter(pk=target.pk).update(quantity=10)
    response = post_step(client, "confirm")
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "registration"
    messages = " ".join(str(m) for m in response.context["messages"])
    assert "The license you chose now has 10 seats, not 20" in messages
    assert not License.objects.filter(source_ref=serial.code).exists()
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN
    # The contacts are kept; the license is offered again, as it is now.
    form = response.context["wizard"]["form"]
    assert form.data["registration-company"] == REGISTRATION["company"]
    assert "target_license" not in form.data and len(_radios(response.content.decode())) == 1
    confirm = post_step(client, "registration", {**REGISTRATION, "target_license": str(target.pk)})
    assert "5 of its 10 seats are upgraded" in " ".join(confirm.content.decode().split())
    post_step(client, "confirm")
    target.refresh_from_db()
    assert License.objects.get(source_ref=serial.code).quantity == 5 and target.quantity == 5


def test_a_stale_confirmation_with_no_license_left_starts_over(client, member, versions) -> None:  # type: ignore[no-untyped-def]
    old, new = versions
    target = _license(member, old, 20)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=5)
    _confirm_page(client, serial, target)
    License.objects.filter(pk=target.pk).update(quantity=2)
    response = post_step(client, "confirm")
    assert response.status_code == 302 and response["Location"] == reverse("get-a-key")
    page = client.get(response["Location"])
    messages = " ".join(str(m) for m in page.context["messages"])
    assert "The license you chose now has 2 seats, not 20" in messages
    target.refresh_from_db()
    assert target.quantity == 2 and target.status == License.Status.ACTIVE
    assert License.objects.count() == 1


def test_a_confirmation_refused_by_the_form_offers_only_licenses_that_fit(
    client, member, versions
) -> None:  # type: ignore[no-untyped-def]
    # Confirming revalidates the choice against every license the serial applies to, whatever
    # its seats (serial_redeem then says what changed); the page shown again must not.
    old, new = versions
    chosen = _license(member, old, 20)
    fits = _license(member, old, 10)
    too_small = _license(member, old, 3)
    serial = SerialNumberFactory(version=new, kind=SerialNumber.Kind.UPGRADE, quantity=5)
    _confirm_page(client, serial, chosen)
    License.objects.filter(pk=chosen.pk).update(status=License.Status.SUPERSEDED)
    response = post_step(client, "confirm")
    assert response.context["wizard"]["steps"].current == "registration"
    html = response.content.decode()
    assert fits.key in html and too_small.key not in html and len(_radios(html)) == 1
    assert not License.objects.filter(source_ref=serial.code).exists()
