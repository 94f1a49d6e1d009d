"""A conversion's result page: its licenses a page at a time, in a bounded number of queries."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from licensing.models import License
from tests.licensing.factories import ProductVersionFactory
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import convert_separately, vouchers
from vouchers.models import Voucher, VoucherConversion
from vouchers.selectors import conversion_licenses
from vouchers.views import RESULT_PAGE_SIZE

pytestmark = pytest.mark.django_db

COUNT = 2 * RESULT_PAGE_SIZE + 30


@pytest.fixture
def converted(client: Client) -> VoucherConversion:
    membership = MembershipFactory()
    client.force_login(membership.user)
    batch = vouchers(COUNT, version=ProductVersionFactory())
    return convert_separately(membership, [v.code for v in batch]).conversion


def _rows(page: str) -> list[str]:
    table = page.split('data-testid="voucher-licenses"')[1].split("</table>")[0]
    return table.split("<tbody>")[1].split("</tr>")[:-1]


def test_the_result_is_paged_in_issue_order_with_bounded_queries(
    client: Client, converted: VoucherConversion, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    url = reverse("voucher-conversion", kwargs={"pk": converted.pk})
    licenses = conversion_licenses(converted)
    codes = dict(Voucher.objects.values_list("license_id", "code"))
    seen: list[str] = []
    for number, expected in ((1, RESULT_PAGE_SIZE), (2, RESULT_PAGE_SIZE), (3, 30)):
        with django_assert_max_num_queries(10):
            page = client.get(url, {"page": number}).content.decode()
        rows = _rows(page)
        assert len(rows) == expected
        assert f"Page {number} of 3" in page
        assert f"{COUNT} licenses were created." in page
        for row, license in zip(rows, licenses[len(seen) :], strict=False):
            assert license.key in row and codes[license.pk] in row
            seen.append(license.key)
    assert seen == [license.key for license in licenses]


@pytest.mark.parametrize("number", ["0", "x", "999", "-1", ""])
def test_a_page_out_of_range_shows_a_page_not_an_error(
    client: Client, converted: VoucherConversion, number: str
) -> None:
    url = reverse("voucher-conversion", kwargs={"pk": converted.pk})
    response = client.get(url, {"page": number})
    assert response.status_code == 200
    assert len(_rows(response.content.decode())) in (RESULT_PAGE_SIZE, 30)


def test_the_zip_holds_every_license_not_only_a_page(
    client: Client, converted: VoucherConversion
) -> None:
    response = client.get(reverse("voucher-conversion-zip", kwargs={"pk": converted.pk}))
    names = zipfile.ZipFile(io.BytesIO(response.getvalue())).namelist()
    assert len(names) == COUNT == License.objects.count()


REFUSED = RESULT_PAGE_SIZE + 50


def _refused_codes(page: str) -> list[str]:
    table = page.split('data-testid="voucher-refused"')[1].split("</table>")[0]
    return [row.split('"')[0] for row in table.split('data-code="')[1:]]


def test_the_codes_not_converted_are_paged_on_their_own(
    client: Client, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    batch = vouchers(RESULT_PAGE_SIZE + 5, version=ProductVersionFactory())
    unknown = [f"ZZZZZ-ZZZZZ-{number:05d}" for number in range(REFUSED)]
    conversion = convert_separately(membership, [v.code for v in batch] + unknown).conversion
    url = reverse("voucher-conversion", kwargs={"pk": conversion.pk})

    with django_assert_max_num_queries(10):
        first = client.get(url).content.decode()
    assert _refused_codes(first) == unknown[:RESULT_PAGE_SIZE]
    assert f"{REFUSED} codes were not converted." in first
    assert 'href="?refused_page=2#not-converted"' in first
    assert 'href="?page=2#converted"' in first  # each list keeps its own control
    assert 'aria-label="Pages of codes not converted"' in first

    # The second page of codes keeps the licenses' page, and the other way round.
    second = client.get(url, {"page": 2, "refused_page": 2}).content.decode()
    assert _refused_codes(second) == unknown[RESULT_PAGE_SIZE:]
    assert f"{REFUSED} codes were not converted." in second
    assert 'href="?page=2&amp;refused_page=1#not-converted"' in second
    assert 'href="?refused_page=2&amp;page=1#converted"' in second
    for number in ("0", "x", "999"):
        assert client.get(url, {"refused_page": number}).status_code == 200
