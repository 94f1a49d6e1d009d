"""Number custom fields: sorted as numbers (empties last either way, page after page, in the
export too), ambiguous thousands refused however they are separated, and the list's filter
reading numbers as saving does (a pt-BR decimal comma)."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from django.test import Client
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue, License
from licensing.views import licenses as list_views
from portal.models import Membership
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

# As stored (custom_value_clean), then a legacy value that is not a number and no value.
NUMBERS = ["1", "2", "9", "10", "100000", "-3.5", "0.25", "-20"]
ASCENDING = ["-20", "-3.5", "0.25", "1", "2", "9", "10", "100000"]
LINK = re.compile(r'<a class="page-link" href="([^"]+)">Next</a>')


@pytest.fixture
def admin(client: Client) -> Membership:
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


@pytest.fixture
def cost(admin: Membership) -> CustomField:
    field = CustomField.objects.create(
        organization=admin.organization, name="Cost", field_type="number"
    )
    for value in [*NUMBERS, "twelve", None]:
        license = LicenseFactory(owner=admin.organization)
        if value is not None:
            CustomFieldValue.objects.create(license=license, field=field, value=value)
    return field


def _values(field: CustomField, licenses: list[License]) -> list[str]:
    by_license = dict(
        CustomFieldValue.objects.filter(field=field).values_list("license_id", "value")
    )
    return [by_license.get(license.pk, "") for license in licenses]


def _rows(response) -> list[License]:  # type: ignore[no-untyped-def]
    return [row["license"] for row in response.context["rows"]]


@pytest.mark.parametrize("descending", [False, True])
def test_a_number_field_sorts_as_numbers_with_empties_last(client, cost, descending) -> None:  # type: ignore[no-untyped-def]
    sort = f"{'-' if descending else ''}cf_{cost.pk}"
    response = client.get(reverse("license-list"), {"sort": sort})
    values = _values(cost, _rows(response))
    expected = ASCENDING[::-1] if descending else ASCENDING
    assert values[: len(NUMBERS)] == expected
    assert sorted(values[len(NUMBERS) :]) == ["", "twelve"]  # no number: after the numbers

    body = b"".join(
        client.get(reverse("license-export", args=["csv"]), {"sort": sort}).streaming_content  # type: ignore[attr-defined]
    )
    exported = [row["Cost"] for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))]
    assert exported[: len(NUMBERS)] == expected


def test_the_number_sort_walks_page_after_page(client, cost, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(list_views, "PAGE_SIZE", 3)
    url = reverse("license-list")
    response = client.get(url, {"sort": f"cf_{cost.pk}"})
    pages = [_rows(response)]
    while LINK.search(response.content.decode()):
        link = html.unescape(LINK.search(response.content.decode()).group(1))  # type: ignore[union-attr]
        response = client.get(url + link)
        pages.append(_rows(response))
    walked = [license for page in pages for license in page]
    assert len(pages) == 4 and len(set(walked)) == len(walked) == 10
    assert _values(cost, walked)[: len(NUMBERS)] == ASCENDING
    # A cursor another sort left in the URL does not break it.
    second = client.get(url, {"sort": f"cf_{cost.pk}", "page": 2, "after": "x:1"})
    assert _rows(second) == pages[1]


def test_a_text_field_sorts_its_empties_last_both_ways(client, admin) -> None:  # type: ignore[no-untyped-def]
    site = CustomField.objects.create(organization=admin.organization, name="Site")
    empty = LicenseFactory(owner=admin.organization)
    for value in ("Braga", "Aveiro"):
        CustomFieldValue.objects.create(
            license=LicenseFactory(owner=admin.organization), field=site, value=value
        )
    for sort, expected in (
        (f"cf_{site.pk}", ["Aveiro", "Braga"]),
        (f"-cf_{site.pk}", ["Braga", "Aveiro"]),
    ):
        rows = _rows(client.get(reverse("license-list"), {"sort": sort}))
        assert _values(site, rows) == [*expected, ""] and rows[-1] == empty


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1.000", "“1.000” could mean 1000 or 1. Type 1000 or 1, whichever you mean."),
        ("1,500", "“1,500” could mean 1500 or 1,5. Type 1500 or 1,5, whichever you mean."),
        ("-12.345", "“-12.345” could mean -12345 or -12.3450. Type -12345 or -12.3450,"),
        ("1.000.000", "write “1.000.000” without thousands separators: 1000000."),
        ("1,000,000", "write “1,000,000” without thousands separators: 1000000."),
    ],
)
def test_thousands_separated_either_way_are_refused(client, admin, raw, message) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(
        organization=admin.organization, name="Cost", field_type="number"
    )
    license = LicenseFactory(owner=admin.organization)
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": license.pk}), {f"cf_{field.pk}": raw}
    )
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert not CustomFieldValue.objects.exists()


@pytest.mark.parametrize(
    "raw", ["1.5", "1.0000", "1000", "-3,5", "12.3450", "0.001", "0,250", "-0.500"]
)
def test_unambiguous_numbers_are_still_accepted(client, admin, raw) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(
        organization=admin.organization, name="Cost", field_type="number"
    )
    license = LicenseFactory(owner=admin.organization)
    client.post(
        reverse("license-custom-values", kwargs={"pk": license.pk}), {f"cf_{field.pk}": raw}
    )
    assert CustomFieldValue.objects.filter(license=license, field=field).exists()


@pytest.mark.parametrize("typed", ["-3,5", "-3.5", "-3.50", " -3,5 "])
def test_the_list_filter_reads_numbers_as_saving_does(client, cost, typed) -> None:  # type: ignore[no-untyped-def]
    client.cookies["django_language"] = "pt-br"
    response = client.get(reverse("license-list"), {f"cf_{cost.pk}": typed})
    assert response.status_code == 200
    assert _values(cost, _rows(response)) == ["-3.5"]
    assert "Informe um número" not in response.content.decode()


def test_the_list_filter_says_what_is_wrong_with_a_number(client, cost) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("license-list"), {f"cf_{cost.pk}": "1.000"})
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "“1.000” could mean 1000 or 1." in page
