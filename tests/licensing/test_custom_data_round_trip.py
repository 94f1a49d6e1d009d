"""Custom data: a CSV exported from My licenses, edited, uploads back; templates to fill in."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue
from portal.models import Membership
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client) -> Membership:  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(membership.user)
    return membership


def _csv(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def _upload(client, rows: list[dict[str, str]]):  # type: ignore[no-untyped-def]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    upload = SimpleUploadedFile("edited.csv", out.getvalue().encode(), "text/csv")
    return client.post(reverse("custom-values-csv"), {"file": upload})


def test_export_edit_upload_round_trip(client, admin) -> None:  # type: ignore[no-untyped-def]
    site = CustomField.objects.create(organization=admin.organization, name="Site")
    cost = CustomField.objects.create(
        organization=admin.organization, name="Cost centre", field_type="text"
    )
    first = LicenseFactory(owner=admin.organization)
    second = LicenseFactory(owner=admin.organization)
    CustomFieldValue.objects.create(license=first, field=site, value="Lisbon")
    CustomFieldValue.objects.create(license=first, field=cost, value="-ops")  # a guarded cell

    exported = _csv(client.get(reverse("license-export", args=["csv"])))
    assert {row["key"] for row in exported} == {first.key, second.key}
    assert "product" in exported[0] and "Site" in exported[0]

    for row in exported:
        row["product"] = "edited, but not a custom field"
        if row["key"] == second.key:
            row["Site"] = "Porto"
    preview_page = _upload(client, exported)
    assert preview_page.status_code == 200
    preview = preview_page.context["preview"]
    assert preview is not None, preview_page.context["form"].errors
    assert "product" in preview.ignored and "status" in preview.ignored
    assert "Site" not in preview.ignored and "key" not in preview.ignored
    html = preview_page.content.decode()
    assert "Ignored columns (not custom fields):" in html and "maintenance_end" in html
    # Only the edited cell changes: the first license's values, guard quote included, stay.
    assert [row.key for row in preview.changing] == [second.key]
    assert not preview.refused

    token = preview_page.context["preview_token"]
    client.post(reverse("custom-values-csv"), {"confirm": "1", "preview": token})
    values = dict(CustomFieldValue.objects.filter(field=site).values_list("license_id", "value"))
    assert values == {first.pk: "Lisbon", second.pk: "Porto"}
    assert CustomFieldValue.objects.get(license=first, field=cost).value == "-ops"


def test_a_file_with_no_custom_field_column_is_refused(client, admin) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    license = LicenseFactory(owner=admin.organization)
    response = _upload(client, [{"key": license.key, "product": "x"}])
    assert response.context["preview"] is None
    assert "columns are not right" in response.content.decode()


def test_templates_to_download(client, admin) -> None:  # type: ignore[no-untyped-def]
    site = CustomField.objects.create(organization=admin.organization, name="Site")
    CustomField.objects.create(organization=admin.organization, name="Owner team")
    mine = LicenseFactory(owner=admin.organization)
    other = LicenseFactory()
    CustomFieldValue.objects.create(license=mine, field=site, value="=cmd")
    page = client.get(reverse("custom-values-csv")).content.decode()
    assert "?template=licenses" in page and "?template=empty" in page

    empty = client.get(reverse("custom-values-csv"), {"template": "empty"})
    assert empty["Content-Type"].startswith("text/csv")
    assert empty.content.decode("utf-8-sig").splitlines() == ["key,Owner team,Site"]  # by name

    filled = client.get(reverse("custom-values-csv"), {"template": "licenses"})
    rows = _csv(filled)
    assert [row["key"] for row in rows] == [mine.key]
    assert other.key not in filled.content.decode()
    assert rows[0]["Site"] == "'=cmd"  # guarded against spreadsheet formulas

    # The filled template uploads back unchanged: nothing to change, nothing refused.
    rows[0]["Owner team"] = "Platform"
    preview = _upload(client, rows).context["preview"]
    assert not preview.ignored and not preview.refused
    assert preview.changing[0].changes == {"Owner team": {"from": "", "to": "Platform"}}


def test_a_field_named_like_a_formula_survives_the_round_trip(client, admin) -> None:  # type: ignore[no-untyped-def]
    # The template wrote the name as it is ("=Site", which a spreadsheet runs), and an upload
    # with the guarded name ("'=Site", as the list's export writes it) did not find the field.
    field = CustomField.objects.create(organization=admin.organization, name="=Site")
    license = LicenseFactory(owner=admin.organization)
    empty = client.get(reverse("custom-values-csv"), {"template": "empty"})
    assert empty.content.decode("utf-8-sig").splitlines() == ["key,'=Site"]
    rows = _csv(client.get(reverse("custom-values-csv"), {"template": "licenses"}))
    assert list(rows[0]) == ["key", "'=Site"]
    rows[0]["'=Site"] = "Lisbon"
    preview = _upload(client, rows).context["preview"]
    assert not preview.ignored and not preview.refused
    assert preview.changing[0].changes == {field.name: {"from": "", "to": "Lisbon"}}
    assert preview.changing[0].key == license.key
