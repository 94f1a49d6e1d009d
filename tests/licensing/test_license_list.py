"""My licenses: filters, search, sorting, pagination, export and the query bound."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue, LicenseShare, SerialNumber
from tests.licensing.factories import (
    LicenseFactory,
    ProductFactory,
    ProductVersionFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
)
from tests.licensing.wizard import walk
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

TODAY = date.today()


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def _keys(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {row["license"].key for row in response.context["rows"]}


def test_rows_show_masked_key_badges_and_owner(client, admin) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=admin.organization, maintenance_end=TODAY + timedelta(days=30))
    page = client.get(reverse("license-list")).content.decode()
    last = license.key.split("-")[-1]
    assert f"•••••-•••••-•••••-•••••-{last}" in page
    assert license.key in page  # one click away, inside <details>
    assert "expiring soon" in page
    assert license.version.product.name in page and admin.organization.name in page


def test_filters(client, admin) -> None:  # type: ignore[no-untyped-def]
    org = admin.organization
    alpha = ProductVersionFactory(product=ProductFactory(name="Alpha Shield"), version="1.0")
    beta = ProductVersionFactory(product=ProductFactory(name="Beta Gateway"), version="2.0")
    expired = LicenseFactory(owner=org, version=alpha, maintenance_end=TODAY - timedelta(days=1))
    expiring = LicenseFactory(owner=org, version=alpha, maintenance_end=TODAY + timedelta(days=20))
    active = LicenseFactory(owner=org, version=beta, maintenance_end=TODAY + timedelta(days=400))
    url = reverse("license-list")
    assert _keys(client.get(url, {"product": alpha.product_id})) == {expired.key, expiring.key}
    assert _keys(client.get(url, {"version": beta.pk})) == {active.key}
    assert _keys(client.get(url, {"maintenance": "expired"})) == {expired.key}
    assert _keys(client.get(url, {"maintenance": "expiring"})) == {expiring.key}
    assert _keys(client.get(url, {"maintenance": "active"})) == {active.key}
    before = (TODAY + timedelta(days=21)).isoformat()
    assert _keys(client.get(url, {"expiring_before": before})) == {expired.key, expiring.key}
    assert _keys(client.get(url, {"status": "superseded"})) == set()


def test_bad_filter_values_do_not_500(client, admin) -> None:  # type: ignore[no-untyped-def]
    LicenseFactory(owner=admin.organization)
    url = reverse("license-list")
    for params in (
        {"product": "abc"},
        {"expiring_before": "31/31/2026"},
        {"status": "nope"},
        {"sort": "password"},
        {"page": "999"},
        {"maintenance": "x"},
    ):
        response = client.get(url, params)
        assert response.status_code == 200, params


def test_search_over_key_serial_host_contacts_and_custom_values(client, admin) -> None:  # type: ignore[no-untyped-def]
    org = admin.organization
    by_contact = LicenseFactory(
        owner=org,
        registration=SupportRegistrationFactory(
            organization=org, technical_email="zelda@hyrule.example"
        ),
    )
    by_host = LicenseFactory(owner=org, host_id="LAB-SERVER-42")
    by_custom = LicenseFactory(owner=org)
    field = CustomField.objects.create(organization=org, name="Cost center")
    CustomFieldValue.objects.create(license=by_custom, field=field, value="CC-9001")
    serial = SerialNumberFactory()
    walk(client, serial.code)
    by_serial = SerialNumber.objects.get(pk=serial.pk).license
    url = reverse("license-list")
    assert _keys(client.get(url, {"q": "zelda@"})) == {by_contact.key}
    assert _keys(client.get(url, {"q": "server-42"})) == {by_host.key}
    assert _keys(client.get(url, {"q": "cc-9001"})) == {by_custom.key}
    # A whole code (or key) in the search is cut to its last two groups by a redirect.
    found = client.get(url, {"q": serial.code.lower().replace("-", "")}, follow=True)
    assert _keys(found) == {by_serial.key}
    assert _keys(client.get(url, {"q": by_host.key[-11:]})) == {by_host.key}


def test_the_contact_search_reads_the_acting_organizations_registrations_only(  # type: ignore[no-untyped-def]
    client, admin
) -> None:
    """Another organization's registration with the same contact is not read (the search used to
    scan every organization's registrations: a whole-table read up to ~8,000 rows), and its
    license stays out of the results."""
    org = admin.organization
    mine = LicenseFactory(
        owner=org,
        registration=SupportRegistrationFactory(organization=org, technical_email="ops@a.example"),
    )
    other = MembershipFactory().organization
    LicenseFactory(
        owner=other,
        registration=SupportRegistrationFactory(
            organization=other, technical_email="ops@a.example"
        ),
    )
    with CaptureQueriesContext(connection) as captured:
        found = client.get(reverse("license-list"), {"q": "ops@a."})
    assert _keys(found) == {mine.key}
    (lookup,) = [q["sql"] for q in captured if 'FROM "licensing_supportregistration"' in q["sql"]]
    assert f'"licensing_supportregistration"."organization_id" = {org.pk}' in lookup
    assert "ORDER BY" not in lookup


def test_custom_field_filter_and_column(client, admin) -> None:  # type: ignore[no-untyped-def]
    org = admin.organization
    site = CustomField.objects.create(
        organization=org, name="Site", field_type="choice", choices="Lisbon\nPorto"
    )
    lisbon, porto = LicenseFactory(owner=org), LicenseFactory(owner=org)
    CustomFieldValue.objects.create(license=lisbon, field=site, value="Lisbon")
    CustomFieldValue.objects.create(license=porto, field=site, value="Porto")
    response = client.get(reverse("license-list"), {f"cf_{site.pk}": "Porto"})
    assert _keys(response) == {porto.key}
    assert "<th" in response.content.decode() and "Site" in response.content.decode()
    ordered = client.get(reverse("license-list"), {"sort": f"-cf_{site.pk}"})
    assert [r["license"].key for r in ordered.context["rows"]] == [porto.key, lisbon.key]


def test_sorting_and_pagination(client, admin) -> None:  # type: ignore[no-untyped-def]
    for quantity in (5, 1, 9):
        LicenseFactory(owner=admin.organization, quantity=quantity)
    rows = client.get(reverse("license-list"), {"sort": "quantity"}).context["rows"]
    assert [r["license"].quantity for r in rows] == [1, 5, 9]
    rows = client.get(reverse("license-list"), {"sort": "-quantity"}).context["rows"]
    assert [r["license"].quantity for r in rows] == [9, 5, 1]
    for _ in range(50):
        LicenseFactory(owner=admin.organization)
    page2 = client.get(reverse("license-list"), {"page": 2, "sort": "quantity"})
    assert len(page2.context["rows"]) == 3
    assert "sort=quantity" in page2.content.decode()  # filter state stays in the URL


def test_phone_sort_links_keep_the_filters(client, admin) -> None:  # type: ignore[no-untyped-def]
    """On a phone the column headers are hidden (rows stack as cards): the same sort links stand
    in a line of their own, keeping the filters and toggling the column sorted on."""
    LicenseFactory(owner=admin.organization)
    page = client.get(reverse("license-list"), {"q": "x", "sort": "-maintenance"}).content.decode()
    links = page.split('data-testid="sort-links"')[1].split("</p>")[0]
    assert "Sort by:" in links
    assert 'href="?q=x&amp;sort=maintenance"' in links  # descending now: the link ascends
    assert 'href="?q=x&amp;sort=product"' in links and 'href="?q=x&amp;sort=owner"' in links
    empty = client.get(reverse("license-list"), {"q": "no such license"}).content.decode()
    assert 'data-testid="sort-links"' not in empty  # nothing to sort


def test_shared_licenses_are_marked(client, admin) -> None:  # type: ignore[no-untyped-def]
    other = MembershipFactory()
    theirs = LicenseFactory(owner=other.organization)
    LicenseShare.objects.create(license=theirs, email=admin.user.email, user=admin.user)
    LicenseFactory(owner=MembershipFactory().organization)  # never visible
    response = client.get(reverse("license-list"))
    assert _keys(response) == {theirs.key}
    assert f"shared by {other.organization.name}" in response.content.decode()


@pytest.mark.parametrize("count", [10, 1000])
def test_query_count_does_not_grow_with_licenses(  # type: ignore[no-untyped-def]
    client, admin, django_assert_max_num_queries, count, settings
) -> None:
    # The same count with or without Redis (with it, the session read is gone).
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    org = admin.organization
    version = ProductVersionFactory()
    registration = SupportRegistrationFactory(organization=org)
    field = CustomField.objects.create(organization=org, name="PO")
    licenses = [
        LicenseFactory(owner=org, version=version, registration=registration) for _ in range(count)
    ]
    CustomFieldValue.objects.bulk_create(
        [CustomFieldValue(license=lic, field=field, value="PO-1") for lic in licenses]
    )
    # A search reads the matching registrations, custom values and serials first (3), and a
    # page reads its ids before its rows (1): see filters.filter_search and views._list_page.
    with django_assert_max_num_queries(12):
        response = client.get(reverse("license-list"), {"q": "PO", "sort": "-maintenance"})
    assert response.status_code == 200
    assert response.context["page"].count == count


def test_csv_export_streams_filtered_rows_with_custom_columns(client, admin) -> None:  # type: ignore[no-untyped-def]
    org = admin.organization
    field = CustomField.objects.create(organization=org, name="Owner team")
    keep = LicenseFactory(owner=org, quantity=7)
    LicenseFactory(owner=org, quantity=3)
    CustomFieldValue.objects.create(license=keep, field=field, value="=cmd|' /C calc'!A0")
    response = client.get(reverse("license-export", args=["csv"]), {"q": keep.key})
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][-1] == "Owner team" and rows[0][0] == "key"
    assert len(rows) == 2 and rows[1][0] == keep.key and rows[1][4] == "7"
    assert rows[1][-1].startswith("'=")  # neutralised for spreadsheets


def test_xlsx_export(client, admin) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=admin.organization)
    response = client.get(reverse("license-export", args=["xlsx"]))
    content = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(content)) as workbook:
        sheet = workbook.read("xl/worksheets/sheet1.xml").decode()
        strings = (
            workbook.read("xl/sharedStrings.xml").decode()
            if ("xl/sharedStrings.xml" in workbook.namelist())
            else ""
        )
    assert license.key in sheet + strings
    assert client.get(reverse("license-export", args=["pdf"])).status_code == 404


def test_rows_escape_what_people_typed_and_speak_the_language(client, admin) -> None:  # type: ignore[no-untyped-def]
    org = admin.organization
    field = CustomField.objects.create(organization=org, name='Team "A"')
    version = ProductVersionFactory(product=ProductFactory(name="<b>Shield</b>"))
    license = LicenseFactory(owner=org, version=version, host_id="h<1>&'")
    CustomFieldValue.objects.create(license=license, field=field, value="<i>x</i>")
    page = client.get(reverse("license-list")).content.decode()
    assert "<b>Shield</b>" not in page and "&lt;b&gt;Shield&lt;/b&gt;" in page
    assert "h&lt;1&gt;&amp;&#x27;" in page and "&lt;i&gt;x&lt;/i&gt;" in page
    assert 'data-label="Team &quot;A&quot;"' in page
    assert f'href="/licenses/{license.pk}/"' in page
    portuguese = client.get(reverse("license-list"), HTTP_ACCEPT_LANGUAGE="pt-br")
    body = portuguese.content.decode()
    assert 'data-label="Versão"' in body
    assert license.maintenance_end.strftime("%d/%m/%Y") in body


@pytest.mark.parametrize("language", ["en", "pt-br"])
def test_the_rows_dates_read_as_date_format_writes_them(language, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.utils import translation
    from django.utils.formats import date_format

    from licensing.templatetags import licensing_tags

    days = [date(2026, 1, 2), date(2031, 12, 31), date(999, 7, 4), date(2000, 10, 9)]
    with translation.override(language):
        formatter = licensing_tags.short_date_formatter()
        for day in days:
            assert formatter(day) == date_format(day, "SHORT_DATE_FORMAT")
        # A format with more than numbers and separators goes through date_format.
        monkeypatch.setattr(licensing_tags, "get_format", lambda name: "N j, Y")
        formatter = licensing_tags.short_date_formatter()
        assert formatter(days[0]) == date_format(days[0], "SHORT_DATE_FORMAT")


def test_the_sorted_column_says_so_on_its_header_cell(client, admin) -> None:  # type: ignore[no-untyped-def]
    """aria-sort was on the sort link, where assistive technology ignores it (axe-core:
    aria-allowed-attr, critical), and the arrow was read as a glyph's name."""
    LicenseFactory(owner=admin.organization)
    page = client.get(reverse("license-list"), {"include": "all", "sort": "-product"})
    body = page.content.decode()
    head = body[body.index("<thead") : body.index("</thead>")]
    sorted_cell = re.search(r'<th scope="col" aria-sort="descending">(.*?)</th>', head)
    assert sorted_cell is not None and "sort=product" in sorted_cell.group(1)
    assert head.count("aria-sort") == 1
    assert '<span aria-hidden="true">▼</span>' in sorted_cell.group(1)
    assert '<span class="visually-hidden"> (sorted descending)</span>' in sorted_cell.group(1)
    assert '<th scope="col" class="text-end">' in head  # Quantity keeps its alignment
    # The phone's line of sort links: no aria-sort on a link either, the same words.
    links = body.split('data-testid="sort-links"')[1].split("</p>")[0]
    assert "aria-sort" not in links and "(sorted descending)" in links
    ascending = client.get(reverse("license-list"), {"sort": "quantity"}).content.decode()
    assert '<th scope="col" class="text-end" aria-sort="ascending">' in ascending
    assert "(sorted ascending)" in ascending
