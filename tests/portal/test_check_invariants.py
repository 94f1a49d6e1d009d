"""`manage.py check_invariants`: each invariant fails on a seeded violation, passes when clean.

The violations are written behind the services' backs (queryset updates, raw inserts), as a
bug or a hand edit would: the command must catch what the code paths are supposed to prevent.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from licensing.models import License, SerialNumber, SerialRedemption
from licensing.services import serial_redeem
from portal.invariants import registered
from portal.models import AuditEvent, OutboundEmail
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import catalog, licensed
from tests.vouchers.factories import vouchers
from tests.vouchers.wizard import walk as convert
from upgrades.models import UpgradeLine
from upgrades.services import notifications_create, upgrade_redeem

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("check_invariants", *args, stdout=out, stderr=out)
    return out.getvalue()


def _fails(*args: str) -> str:
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("check_invariants", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


@pytest.fixture
def redeemed(member):  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(quantity=5)
    result = serial_redeem(
        code=serial.code,
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
    )
    return serial, result.license


def test_every_app_registers_its_checks() -> None:
    names = set(registered())
    assert {
        "serials.redeemed_once",
        "serials.upgrades_move_seats",
        "licenses.issued_once",
        "upgrades.lines_within_limit",
        "vouchers.spent_once",
        "enterprise_flex.lines_add_up",
        "enterprise_flex.contract_users_are_members",
        "outbox.nothing_stale",
    } <= names


def test_a_clean_database_passes(client, member, redeemed) -> None:  # type: ignore[no-untyped-def]
    convert(client, "\n".join(v.code for v in vouchers(3)))
    old, new = catalog()
    licensed(member.organization, old, quantity=10, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    upgrade_redeem(
        line_id=UpgradeLine.objects.get().pk,
        quantity=4,
        organization=member.organization,
        registration=REGISTRATION,
        actor=member.user,
        token="inv-1",
    )
    out = _run()
    assert "no violations" in out


def test_empty_database_passes() -> None:
    assert "no violations" in _run()


# -- serials --------------------------------------------------------------------------------------


def test_a_reopened_serial_fails(redeemed) -> None:  # type: ignore[no-untyped-def]
    serial, _license = redeemed
    SerialNumber.objects.filter(pk=serial.pk).update(
        status="open", redeemed_by=None, redeemed_at=None, license=None
    )
    out = _fails()
    assert serial.code in out and "serials.redeemed_once" in out


def test_a_serial_spent_twice_fails(member, redeemed) -> None:  # type: ignore[no-untyped-def]
    serial, _license = redeemed
    # A second license from the same serial, as the import bug made possible.
    from tests.licensing.factories import LicenseFactory

    LicenseFactory(owner=MembershipFactory().organization, source_ref=serial.code, quantity=5)
    out = _fails()
    assert serial.code in out


def test_a_license_larger_than_its_serial_fails(redeemed) -> None:  # type: ignore[no-untyped-def]
    serial, license = redeemed
    License.objects.filter(pk=license.pk).update(quantity=serial.quantity + 1)
    assert serial.code in _fails()


def _upgrade_serial(member, *, held: int, quantity: int):  # type: ignore[no-untyped-def]
    """An upgrade serial for `quantity` seats redeemed on a license with `held`."""
    from tests.licensing.factories import LicenseFactory, ProductVersionFactory

    old = LicenseFactory(owner=member.organization, quantity=held)
    serial = SerialNumberFactory(
        kind=SerialNumber.Kind.UPGRADE,
        quantity=quantity,
        version=ProductVersionFactory(product=old.version.product),
    )
    new = serial_redeem(
        code=serial.code,
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        target_license_id=str(old.pk),
    ).license
    return serial, old, new


def test_upgrade_serials_that_move_seats_pass(member) -> None:  # type: ignore[no-untyped-def]
    _upgrade_serial(member, held=10, quantity=10)  # the whole license
    _upgrade_serial(member, held=10, quantity=4)  # part of it
    assert "no violations" in _run()


def test_an_upgrade_serial_that_made_seats_fails(member) -> None:  # type: ignore[no-untyped-def]
    # What serial_redeem did before it compared quantities: a 15-seat license superseded by
    # one of 50 (here the superseded license is lowered behind the service's back instead).
    _serial, old, new = _upgrade_serial(member, held=15, quantity=15)
    License.objects.filter(pk=old.pk).update(quantity=5)
    out = _fails()
    assert "serials.upgrades_move_seats" in out
    assert f"license {new.pk} started with 15 seats, more than the 5 of license {old.pk}" in out


def test_a_redemption_without_a_redeemed_serial_fails(member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    from tests.licensing.factories import LicenseFactory

    license = LicenseFactory(owner=member.organization, source_ref=serial.code)
    SerialRedemption.objects.create(
        serial=serial,
        code=serial.code,
        kind="new",
        license=license,
        organization=member.organization,
    )
    assert serial.code in _fails()


# -- licenses: one issue event each ---------------------------------------------------------------


def test_a_license_without_its_issue_event_fails(redeemed) -> None:  # type: ignore[no-untyped-def]
    _serial, license = redeemed
    # The audit log is append-only for the ORM (and for PostgreSQL's trigger, once there):
    # the seeded violation goes around both, as a restore from a partial backup would.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "DELETE FROM portal_auditevent WHERE action = %s AND object_id = %s",
            ["license.issued", str(license.pk)],
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    out = _fails()
    assert str(license.pk) in out and "licenses.issued_once" in out


def test_a_license_issued_twice_fails(redeemed) -> None:  # type: ignore[no-untyped-def]
    _serial, license = redeemed
    AuditEvent.objects.create(
        action="license.issued", object_type="licensing.license", object_id=str(license.pk)
    )
    out = _fails()
    assert f"license {license.pk} has 2 license.issued events" in out


# -- upgrade lines --------------------------------------------------------------------------------


def test_an_upgrade_line_spent_beyond_its_limit_fails(member) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    licensed(member.organization, old, quantity=10, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    line = UpgradeLine.objects.get()
    upgrade_redeem(
        line_id=line.pk,
        quantity=4,
        organization=member.organization,
        registration=REGISTRATION,
        actor=member.user,
        token="inv-2",
    )
    # Remaining put back as if nothing had been upgraded: the line can now be spent again.
    UpgradeLine.objects.filter(pk=line.pk).update(remaining_quantity=10)
    out = _fails()
    assert "upgrades.lines_within_limit" in out and f"line {line.pk}" in out


# -- vouchers -------------------------------------------------------------------------------------


def test_a_reopened_voucher_fails(client, member) -> None:  # type: ignore[no-untyped-def]
    (voucher,) = vouchers(1)
    convert(client, voucher.code)
    from vouchers.models import Voucher

    Voucher.objects.filter(pk=voucher.pk).update(status="open")
    out = _fails()
    assert voucher.code in out and "vouchers.spent_once" in out


def test_a_license_larger_than_its_vouchers_fails(client, member) -> None:  # type: ignore[no-untyped-def]
    codes = [v.code for v in vouchers(2, quantity_per_voucher=3)]
    convert(client, "\n".join(codes))
    license = License.objects.get(source="voucher")
    License.objects.filter(pk=license.pk).update(quantity=7)
    assert str(license.pk) in _fails()


# -- outbox ---------------------------------------------------------------------------------------


def test_a_stale_unsent_email_fails_and_the_threshold_is_a_flag() -> None:
    row = OutboundEmail.objects.create(
        template="invitation", to=["x@example.com"], subject="Hello", body_text="Hello"
    )
    OutboundEmail.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(minutes=20)
    )
    out = _fails()
    assert str(row.pk) in out and "outbox.nothing_stale" in out
    assert "no violations" in _run("--outbox-max-age", "30")
    OutboundEmail.objects.filter(pk=row.pk).update(status=OutboundEmail.Status.SENT)
    assert "no violations" in _run()


def test_an_ef_line_that_does_not_add_up_fails(member) -> None:  # type: ignore[no-untyped-def]
    from enterprise_flex.models import EFLine
    from enterprise_flex.services import DrawdownRequest, drawdown_create
    from tests.enterprise_flex.factories import EFContractFactory, EFLineFactory

    contract = EFContractFactory(organization=member.organization)
    line = EFLineFactory(contract=contract, committed_quantity=5)
    drawdown_create(
        contract=contract,
        request=DrawdownRequest(line_id=line.pk, site_id=contract.sites.get().pk, quantity=3),
        actor=member.user,
        token="invariants",
    )
    assert "enterprise_flex" not in _run()
    EFLine.objects.filter(pk=line.pk).update(drawn_quantity=2)
    out = _fails()
    expected = f"line {line.pk} of {contract.number} says 2 drawn down, its drawdowns add up to 3"
    assert expected in out


def test_an_ef_contract_user_outside_the_organization_fails(member) -> None:  # type: ignore[no-untyped-def]
    from portal.models import Membership
    from tests.enterprise_flex.factories import EFContractFactory, contract_member

    contract = EFContractFactory(organization=member.organization)
    leaver = contract_member(contract, "configuration")
    assert "enterprise_flex" not in _run()
    # Removed behind the services' back: the contract row stays (what removals used to leave).
    Membership.objects.filter(user=leaver).delete()
    out = _fails()
    assert f"({leaver.email}, configuration) of {contract.number} is not a member" in out
