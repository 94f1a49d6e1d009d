"""Query counts of FileConnect pages do not grow with licenses, releases or files."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from tests.fileconnect.factories import add_file, license_of, member, share, version_of
from tests.fileconnect.pages import body, link_for
from tests.licensing.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("scale", [1, 8])
def test_pages_have_bounded_queries(client, scale, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    product = ProductFactory()
    # All released by now: FileConnect lists nothing dated after today.
    versions = [version_of(product, f"{n}.0", date(2010 + n, 1, 1)) for n in range(1, 2 + scale)]
    for version in versions:
        for platform in range(scale):
            add_file(
                version,
                f"{version.version}-{platform}".encode(),
                platform=f"P{platform}",
                name=f"setup-p{platform}.exe",  # one name per file of a release
            )
    license = license_of(customer, versions[0], start=date(2010, 1, 1), end=date(2099, 1, 1))
    for _ in range(scale * 5):
        license_of(customer, versions[0], start=date(2010, 1, 1), end=date(2099, 1, 1))
    other = member()
    share(
        license_of(other, versions[-1], start=date(2010, 1, 1), end=date(2099, 1, 1)), customer.user
    )
    client.force_login(customer.user)
    with django_assert_max_num_queries(12):
        home = client.get(reverse("fileconnect"))
    assert home.status_code == 200
    with django_assert_max_num_queries(12):
        page = client.get(reverse("fileconnect-license", args=[license.pk]))
    assert page.status_code == 200
    assert page.content.decode().count(">Download</a>") == len(versions) * scale


def test_a_download_costs_a_fixed_number_of_queries(client, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    customer = member(role="member")
    version = version_of(ProductFactory(), "1.0", date(2025, 1, 1))
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    for _ in range(10):
        license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    added = add_file(version, b"x" * 1000)
    client.force_login(customer.user)
    url = link_for(client, license, added)
    with django_assert_max_num_queries(9):
        assert body(client.get(url)) == b"x" * 1000
