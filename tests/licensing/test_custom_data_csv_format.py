"""Custom data CSV: the list's export uploads back as it is (custom fields named like its own
columns, values that start with a guard quote), files as pt-BR Excel writes them (a BOM, ';'
between cells), and a file that cannot be read says why in the reader's language."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from licensing.models import CustomField, CustomFieldValue, License
from licensing.services import EXPORT_HEADER, csv_unguarded
from licensing.views.licenses import csv_safe
from portal.models import Membership
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

BOM = b"\xef\xbb\xbf"


@pytest.fixture
def admin(client: Client) -> Membership:
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(membership.user)
    return membership


def _export(client: Client) -> bytes:
    response = client.get(reverse("license-export", args=["csv"]))
    assert response.status_code == 200
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def _upload(client: Client, content: bytes, **extra: str):  # type: ignore[no-untyped-def]
    upload = SimpleUploadedFile("licenses.csv", content, "text/csv")
    return client.post(reverse("custom-values-csv"), {"file": upload}, **extra)


def _apply(client: Client, preview_page) -> None:  # type: ignore[no-untyped-def]
    token = preview_page.context["preview_token"]
    client.post(reverse("custom-values-csv"), {"confirm": "1", "preview": token})


# -- custom fields named like the export's columns ----------------------------------------------


@pytest.mark.parametrize("name", ["Status", "product", "OWNER", "Technical_Email", " Issued_at "])
def test_a_field_cannot_take_the_name_of_an_export_column(client, admin, name) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("custom-fields"), {"name": name, "field_type": "text", "position": 0}
    )
    assert response.status_code == 200
    assert "is a column of the My licenses export" in response.content.decode()
    assert not CustomField.objects.exists()
    field = CustomField.objects.create(organization=admin.organization, name="Site")
    response = client.post(
        reverse("custom-field-edit", args=[field.pk]),
        {"name": name, "field_type": "text", "position": 0},
    )
    assert "is a column of the My licenses export" in response.content.decode()
    assert CustomField.objects.get().name == "Site"


@pytest.mark.parametrize("name", ["Status", "status", "Owner"])
def test_an_existing_field_named_like_an_export_column_survives_the_round_trip(
    client, admin, name
) -> None:  # type: ignore[no-untyped-def]
    # Fields created before the names were reserved: the export's own column came first in the
    # file and was read as the field ("@SUM(A1)" -> "active" on every license).
    field = CustomField.objects.create(organization=admin.organization, name=name)
    kept, empty = LicenseFactory(owner=admin.organization), LicenseFactory(owner=admin.organization)
    CustomFieldValue.objects.create(license=kept, field=field, value="@SUM(A1)")

    exported = _export(client)
    preview_page = _upload(client, exported)
    preview = preview_page.context["preview"]
    assert preview is not None, preview_page.context["form"].errors
    assert not preview.changing and not preview.refused

    # Edited in its own column, the field changes; the export's column is not read.
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))
    header = rows[0]
    column = len(header) - 1
    assert header[column] == name and header[: len(EXPORT_HEADER)] == EXPORT_HEADER
    for row in rows[1:]:
        row[column] = "Blue"
        row[EXPORT_HEADER.index(name.lower())] = "edited"
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    preview_page = _upload(client, out.getvalue().encode())
    preview = preview_page.context["preview"]
    assert {row.key for row in preview.changing} == {kept.key, empty.key}
    assert preview.changing[0].changes == {
        name: {"from": "@SUM(A1)" if preview.changing[0].key == kept.key else "", "to": "Blue"}
    }
    _apply(client, preview_page)
    assert set(CustomFieldValue.objects.values_list("value", flat=True)) == {"Blue"}


def test_two_columns_for_one_field_are_refused(client, admin) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    license = LicenseFactory(owner=admin.organization)
    response = _upload(client, f"key,Site,site\n{license.key},Lisbon,Porto\n".encode())
    assert response.context["preview"] is None
    assert "The column “site” appears more than once" in response.content.decode()
    response = _upload(client, f"key,Site,key\n{license.key},Lisbon,{license.key}\n".encode())
    assert "The column “key” appears more than once" in response.content.decode()


def test_a_column_without_a_header_is_not_listed(client, admin) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    license = LicenseFactory(owner=admin.organization)
    response = _upload(client, f"key,Site,,colour\n{license.key},Lisbon,x,red\n".encode())
    preview = response.context["preview"]
    assert preview.ignored == ["colour"]
    assert "Ignored columns (not custom fields): colour<" in " ".join(
        response.content.decode().split()
    ).replace(" <", "<")


# -- guard quotes ------------------------------------------------------------------------------

TRICKY = [
    "'=already",
    "''=x",
    "'''@x",
    "'-42",
    "-42",
    "-3.5",
    "=cmd|' /C calc'!A0",
    "@SUM(A1)",
    "+1",
    "'+1",
    "'plain",
    "'",
    "''",
    "-",
    "'-",
    "a'=b",
]


@pytest.mark.parametrize("value", TRICKY)
def test_the_guard_quote_comes_off_exactly_once(value) -> None:  # type: ignore[no-untyped-def]
    assert csv_unguarded(csv_safe(value)) == value


@pytest.mark.parametrize("connection_vendor", ["postgresql", "other"])
def test_tricky_values_survive_export_then_upload(
    client, admin, monkeypatch, connection_vendor
) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection

    if connection_vendor != "postgresql":  # the csv.writer path (SQLite), on the same rows
        monkeypatch.setattr(connection, "vendor", connection_vendor)
    field = CustomField.objects.create(organization=admin.organization, name="Note")
    named = CustomField.objects.create(organization=admin.organization, name="'=Odd name")
    for value in TRICKY:
        license = LicenseFactory(owner=admin.organization)
        CustomFieldValue.objects.create(license=license, field=field, value=value)
        CustomFieldValue.objects.create(license=license, field=named, value=value)
    exported = _export(client)
    monkeypatch.undo()
    preview_page = _upload(client, exported)
    preview = preview_page.context["preview"]
    assert preview is not None, preview_page.context["form"].errors
    assert not preview.refused
    assert [row.changes for row in preview.changing] == []
    assert sorted(
        row[field.name] for row in csv.DictReader(io.StringIO(exported.decode("utf-8-sig")))
    ) == sorted(csv_safe(v) for v in TRICKY)


# -- pt-BR Excel --------------------------------------------------------------------------------


def test_the_exports_start_with_a_bom_for_excel(client, admin) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(organization=admin.organization, name="Cidade")
    license = LicenseFactory(owner=admin.organization)
    CustomFieldValue.objects.create(license=license, field=field, value="São Paulo")
    exported = _export(client)
    assert exported.startswith(BOM + b"key,") and "São Paulo".encode() in exported
    for template in ("licenses", "empty"):
        response = client.get(reverse("custom-values-csv"), {"template": template})
        assert response.content.startswith(BOM + b"key,Cidade")


def test_a_semicolon_separated_file_is_read(client, admin) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    CustomField.objects.create(organization=admin.organization, name="Cost", field_type="number")
    license = LicenseFactory(owner=admin.organization)
    content = f"\ufeffkey;Site;Cost\r\n{license.key};São Paulo, SP;3,5\r\n".encode()
    preview_page = _upload(client, content)
    preview = preview_page.context["preview"]
    assert preview is not None, preview_page.context["form"].errors
    assert preview.changing[0].changes == {
        "Site": {"from": "", "to": "São Paulo, SP"},
        "Cost": {"from": "", "to": "3.5"},
    }
    _apply(client, preview_page)
    assert set(CustomFieldValue.objects.values_list("value", flat=True)) == {"São Paulo, SP", "3.5"}


def test_an_export_opened_in_excel_and_saved_with_semicolons_uploads_back(client, admin) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(organization=admin.organization, name="Site")
    license = LicenseFactory(owner=admin.organization)
    License.objects.filter(pk=license.pk).update(source_ref="PO;1")
    CustomFieldValue.objects.create(license=license, field=field, value="Lisboa; Porto")
    rows = list(csv.reader(io.StringIO(_export(client).decode("utf-8-sig"))))
    rows[1][-1] = "Faro; Braga"
    out = io.StringIO()
    csv.writer(out, delimiter=";").writerows(rows)
    preview = _upload(client, BOM + out.getvalue().encode()).context["preview"]
    assert preview.changing[0].changes == {"Site": {"from": "Lisboa; Porto", "to": "Faro; Braga"}}


# -- unreadable files ---------------------------------------------------------------------------


def test_a_huge_cell_is_refused_in_the_readers_language(client, admin) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    license = LicenseFactory(owner=admin.organization)
    content = f'key,Site\n{license.key},"{"x" * 140_000}"\n'.encode()
    response = _upload(client, content)
    assert response.context["preview"] is None
    page = response.content.decode()
    assert "field larger than field limit" not in page
    assert "Line 2 has a cell longer than 131,072 characters" in page
    with translation.override("pt-br"):
        response = _upload(client, content, HTTP_ACCEPT_LANGUAGE="pt-br")
    assert "field larger than field limit" not in response.content.decode()


def test_the_header_example_wraps_on_a_phone(client, admin) -> None:  # type: ignore[no-untyped-def]
    for index in range(12):
        CustomField.objects.create(organization=admin.organization, name=f"Field number {index}")
    page = client.get(reverse("custom-values-csv")).content.decode()
    assert 'class="small font-monospace text-break' in page
