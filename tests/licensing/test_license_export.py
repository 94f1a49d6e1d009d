"""The CSV export: the same cells on PostgreSQL (COPY) and elsewhere (csv.writer), formula
characters neutralised in text cells only, custom columns, ISO dates, shared rows blanked."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue, License, LicenseShare
from licensing.views.licenses import EXPORT_HEADER
from tests.licensing.factories import (
    LicenseFactory,
    ProductFactory,
    ProductVersionFactory,
    SupportRegistrationFactory,
)
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _export(client, **params):  # type: ignore[no-untyped-def]
    response = client.get(reverse("license-export", args=["csv"]), params)
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return body, list(csv.DictReader(io.StringIO(body, newline="")))


def test_cells_header_dates_and_formula_escaping(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    client.force_login(admin.user)
    org = admin.organization
    product = ProductFactory(name="=SUM(A1:A9)", sku="+SKU")
    version = ProductVersionFactory(product=product, version="-beta")
    registration = SupportRegistrationFactory(
        organization=org, company="@Acme, Inc.", technical_name='Tia "T" Tech'
    )
    start, end = date(2026, 1, 2), date(2027, 1, 2)
    license = LicenseFactory(
        owner=org,
        version=version,
        registration=registration,
        host_id="-42",
        source_ref="\tREF",
        maintenance_start=start,
        maintenance_end=end,
    )
    plain = CustomField.objects.create(organization=org, name="=Team")
    empty = CustomField.objects.create(organization=org, name="Site")
    CustomFieldValue.objects.create(license=license, field=plain, value="-cmd")
    body, rows = _export(client)
    header = next(csv.reader(io.StringIO(body)))
    assert header == [*EXPORT_HEADER, "'=Team", "Site"]
    (row,) = rows
    assert row["key"] == license.key
    assert row["product"] == "'=SUM(A1:A9)" and row["sku"] == "'+SKU"
    assert row["version"] == "'-beta"
    assert row["host_id"] == "-42"  # a negative number stays a number
    assert row["company"] == "'@Acme, Inc." and row["technical_contact"] == 'Tia "T" Tech'
    assert row["source_ref"] == "'\tREF"
    assert row["quantity"] == "10" and row["status"] == "active" and row["source"] == "serial"
    assert (row["maintenance_start"], row["maintenance_end"]) == ("2026-01-02", "2027-01-02")
    issued = License.objects.get(pk=license.pk).issued_at
    assert row["issued_at"] == issued.isoformat(timespec="seconds")
    assert row["issued_at"].endswith("+00:00")
    assert row["'=Team"] == "'-cmd" and row["Site"] == ""
    assert empty.pk  # a field without a value is an empty column


def test_shared_rows_blank_the_owners_reference_and_data(client) -> None:  # type: ignore[no-untyped-def]
    admin, other = MembershipFactory(), MembershipFactory()
    client.force_login(admin.user)
    field = CustomField.objects.create(organization=admin.organization, name="Team")
    theirs = LicenseFactory(owner=other.organization, source_ref="THEIR-PO")
    their_field = CustomField.objects.create(organization=other.organization, name="Team")
    CustomFieldValue.objects.create(license=theirs, field=their_field, value="secret")
    LicenseShare.objects.create(license=theirs, email=admin.user.email, user=admin.user)
    mine = LicenseFactory(owner=admin.organization, source_ref="MY-PO")
    CustomFieldValue.objects.create(license=mine, field=field, value="Blue")
    _body, rows = _export(client, sort="owner")
    by_key = {row["key"]: row for row in rows}
    assert (by_key[mine.key]["source_ref"], by_key[mine.key]["Team"]) == ("MY-PO", "Blue")
    assert (by_key[theirs.key]["source_ref"], by_key[theirs.key]["Team"]) == ("", "")


def test_export_follows_the_list_filters_and_order(client) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    client.force_login(admin.user)
    org = admin.organization
    today = date.today()
    soon = LicenseFactory(owner=org, maintenance_end=today + timedelta(days=10))
    late = LicenseFactory(owner=org, maintenance_end=today + timedelta(days=500))
    old = LicenseFactory(owner=org)
    License.objects.filter(pk=old.pk).update(status=License.Status.SUPERSEDED)
    _body, rows = _export(client, sort="maintenance")
    assert [row["key"] for row in rows] == [soon.key, late.key]  # current licenses, as listed
    _body, rows = _export(client, sort="-maintenance", include="all")
    assert {row["key"] for row in rows} == {soon.key, late.key, old.key}
    assert rows[0]["key"] == late.key


def test_export_query_count_does_not_grow(  # type: ignore[no-untyped-def]
    client, django_assert_max_num_queries
) -> None:
    admin = MembershipFactory()
    client.force_login(admin.user)
    org = admin.organization
    field = CustomField.objects.create(organization=org, name="PO")
    version = ProductVersionFactory()
    registration = SupportRegistrationFactory(organization=org)
    licenses = [
        LicenseFactory(owner=org, version=version, registration=registration) for _ in range(30)
    ]
    CustomFieldValue.objects.bulk_create(
        [CustomFieldValue(license=lic, field=field, value="PO-1") for lic in licenses]
    )
    with django_assert_max_num_queries(12):
        _body, rows = _export(client)
    assert len(rows) == 30 and {row["PO"] for row in rows} == {"PO-1"}


# A leading minus followed by a digit is not always a number: spreadsheets run these as
# formulas (OWASP's CSV injection examples), and they were let through as "negative numbers".
FORMULAS_AFTER_A_MINUS = ["-2+3+cmd|' /C calc'!A0", "-1+1", '-1)*HYPERLINK("http://x")', "-1 "]
NUMBERS = ["-42", "-3.5", "-0.125"]


@pytest.mark.parametrize("connection_vendor", ["postgresql", "other"])
def test_a_minus_and_a_digit_is_guarded_unless_the_cell_is_a_number(  # type: ignore[no-untyped-def]
    client, monkeypatch, connection_vendor
) -> None:
    from django.db import connection

    admin, other = MembershipFactory(), MembershipFactory()
    client.force_login(admin.user)
    if connection_vendor != "postgresql":  # the csv.writer path (SQLite), on the same rows
        monkeypatch.setattr(connection, "vendor", connection_vendor)
    # A license shared by another organization: its registration is text typed over there.
    values = FORMULAS_AFTER_A_MINUS + NUMBERS
    for value in values:
        theirs = LicenseFactory(
            owner=other.organization,
            registration=SupportRegistrationFactory(organization=other.organization, company=value),
        )
        LicenseShare.objects.create(license=theirs, email=admin.user.email, user=admin.user)
    _body, rows = _export(client)
    companies = {row["company"] for row in rows}
    assert companies == {f"'{v}" for v in FORMULAS_AFTER_A_MINUS} | set(NUMBERS)
