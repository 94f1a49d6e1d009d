"""portal.rows writes what the ORM's save would, without its compiler: the same values in every
column (defaults, auto dates, foreign keys, JSON), the auto primary key read back, and an
update of the named fields only; and RowQuery reads what the QuerySet would, compiled once."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.transaction import TransactionManagementError
from django.forms.models import model_to_dict

from licensing.models import SerialNumber, SerialRedemption, SupportRegistration
from portal.models import AuditEvent
from portal.rows import RowQuery, row_update, rows_insert
from portal.services import audit_event_build
from tests.licensing.factories import REGISTRATION, LicenseFactory, SerialNumberFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _stored(instance: Any) -> dict[str, Any]:
    fresh = type(instance).objects.get(pk=instance.pk)
    return {field.attname: getattr(fresh, field.attname) for field in fresh._meta.concrete_fields}


def test_an_inserted_row_reads_back_as_the_ormsaved_one() -> None:
    membership = MembershipFactory()
    by_orm = SupportRegistration(organization=membership.organization, **REGISTRATION)
    by_orm.save(force_insert=True)
    by_rows = SupportRegistration(organization=membership.organization, **REGISTRATION)
    rows_insert([by_rows])
    assert by_rows.pk is not None and by_rows.pk != by_orm.pk  # the serial id, read back
    assert not by_rows._state.adding
    ours, theirs = _stored(by_rows), _stored(by_orm)
    for name in ("id", "created_at", "updated_at"):
        ours.pop(name), theirs.pop(name)
    assert ours == theirs
    assert model_to_dict(by_rows) == {**model_to_dict(by_orm), "id": by_rows.pk}


def test_many_rows_with_json_in_one_statement(django_assert_num_queries: Any) -> None:
    membership = MembershipFactory()
    events = [
        audit_event_build(
            action=f"test.{n}",
            actor=membership.user,
            organization=membership.organization,
            details={"n": n, "nested": {"key": "value"}},
        )
        for n in range(3)
    ]
    with django_assert_num_queries(1):
        rows_insert(events)
    stored = {event.action: event.details for event in AuditEvent.objects.all()}
    assert stored == {f"test.{n}": {"n": n, "nested": {"key": "value"}} for n in range(3)}


def test_an_update_writes_the_named_fields_only() -> None:
    serial = SerialNumberFactory()
    license = LicenseFactory()
    serial.status = SerialNumber.Status.REDEEMED
    serial.license = license
    serial.redeemed_by = license.owner
    serial.quantity = 999  # not named: not written
    row_update(serial, ["status", "license", "redeemed_by"])
    fresh = SerialNumber.objects.get(pk=serial.pk)
    assert fresh.status == SerialNumber.Status.REDEEMED and fresh.license_id == license.pk
    assert fresh.redeemed_by_id == license.owner_id and fresh.quantity != 999


def test_a_unique_row_inserted_twice_raises_djangos_integrity_error() -> None:
    serial = SerialNumberFactory()
    license = LicenseFactory()
    membership = MembershipFactory()

    def redemption() -> SerialRedemption:
        return SerialRedemption(
            serial=serial,
            code=serial.code,
            kind=serial.kind,
            license=license,
            organization=membership.organization,
            redeemed_by=membership.user,
        )

    rows_insert([redemption()])
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert([redemption()])
    assert SerialRedemption.objects.count() == 1
    # The statement prepared on this connection still runs after the rolled-back one (psycopg
    # forgets what it prepared on a rollback and prepares it again).
    serial = SerialNumberFactory()
    rows_insert([redemption()])
    assert SerialRedemption.objects.count() == 2


_LOCKED = RowQuery(
    lambda code: (
        SerialNumber.objects.select_for_update(of=("self",))
        .select_related("version__product")
        .filter(code=code)
    )
)


def test_a_row_query_reads_what_the_queryset_reads(django_assert_num_queries: Any) -> None:
    serial = SerialNumberFactory()
    other = SerialNumberFactory()
    with transaction.atomic():
        expected = (
            SerialNumber.objects.select_related("version__product").filter(code=serial.code).get()
        )
        with django_assert_num_queries(1):
            found = _LOCKED.first(serial.code)
            assert found is not None
            # The joined rows came with it: no query for them.
            assert found.version.product.name == expected.version.product.name
        assert found._state.adding is False and found._state.db == "default"
        assert _stored(found) == _stored(expected)
        for name in ("version", "product"):
            theirs = expected.version if name == "version" else expected.version.product
            ours = found.version if name == "version" else found.version.product
            assert model_to_dict(ours) == model_to_dict(theirs)
        # Compiled once, run again with other parameters: the other row, and none for no row.
        again = _LOCKED.first(other.code)
        assert again is not None and again.pk == other.pk
        assert _LOCKED.first("NO-SUCH-CODE") is None
        assert _LOCKED.all(serial.code) == [found]


@pytest.mark.django_db(transaction=True)  # autocommit between the test's statements
def test_a_locking_row_query_is_refused_outside_a_transaction_every_time() -> None:
    serial = SerialNumberFactory()
    with transaction.atomic():
        assert _LOCKED.first(serial.code) is not None  # compiled (or already) in a transaction
    if not connection.features.has_select_for_update:  # SQLite: no row locks, none refused
        assert _LOCKED.first(serial.code) is not None
        return
    with pytest.raises(TransactionManagementError):
        _LOCKED.first(serial.code)
    with pytest.raises(TransactionManagementError):  # as the ORM says
        SerialNumber.objects.select_for_update().filter(code=serial.code).first()


def test_a_row_query_refuses_a_query_whose_parameters_are_not_the_callers() -> None:
    constant = RowQuery(lambda code: SerialNumber.objects.filter(code=code, quantity=5))
    with pytest.raises(ValueError, match="parameters"):
        constant.first("ABC")
    annotated = RowQuery(
        lambda code: SerialNumber.objects.filter(code=code).annotate(twice=F("quantity") * 2)
    )
    with pytest.raises(ValueError, match="whole rows"):
        annotated.first("ABC")


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepares")
def test_the_mints_statements_are_prepared_and_no_other() -> None:
    membership = MembershipFactory()
    registrations = [
        SupportRegistration(organization=membership.organization, **REGISTRATION) for _ in "ab"
    ]
    for registration in registrations:
        rows_insert([registration])  # the same statement twice: prepared once, run twice
    row_update(registrations[0], ["company"])
    serial = SerialNumberFactory()
    with transaction.atomic():
        assert _LOCKED.first(serial.code) is not None
    for _ in range(6):  # the ORM's own statements are not prepared, however often they run
        list(SupportRegistration.objects.filter(organization=membership.organization))
    prepared = _prepared()
    table = '"licensing_supportregistration"'
    assert sum(s.startswith(f"INSERT INTO {table}") for s in prepared) == 1
    assert sum(s.startswith(f"UPDATE {table}") for s in prepared) == 1
    assert sum('FROM "licensing_serialnumber"' in s and "FOR UPDATE" in s for s in prepared) == 1
    assert not [s for s in prepared if s.startswith("SELECT") and "FOR UPDATE" not in s]
    assert registrations[0].pk != registrations[1].pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepares")
def test_preparing_can_be_turned_off(settings: Any) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = False
    membership = MembershipFactory()
    rows_insert([SupportRegistration(organization=membership.organization, **REGISTRATION)])
    assert not [s for s in _prepared() if "licensing_supportregistration" in s]
