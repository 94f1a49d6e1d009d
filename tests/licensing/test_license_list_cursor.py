"""My licenses: Next and Previous carry a cursor (keyset pagination), so that a deep page costs
what page 1 costs. Walking the pages either way shows every license once, in order, for every
sort; a page asked for by number, or with a cursor that does not parse, still works."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing.filters import SORTS
from licensing.views import licenses as list_views
from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r'<a class="page-link" href="([^"]+)">(Next|Previous)</a>')


@pytest.fixture
def licenses(client, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(list_views, "PAGE_SIZE", 3)
    admin = MembershipFactory()
    client.force_login(admin.user)
    versions = [
        ProductVersionFactory(product=ProductFactory(name=name), version=version)
        for name, version in (("Alpha", "1.0"), ("Beta", "2.0"))
    ]
    now = timezone.now()
    # Ties on every sort column, so that the id must settle the order.
    return {
        LicenseFactory(
            owner=admin.organization,
            version=versions[i % 2],
            quantity=i % 3 + 1,
            host_id=f"host-{i % 4}",
            maintenance_end=date.today() + timedelta(days=30 * (i % 3)),
            issued_at=now - timedelta(days=i % 5),
        ).key
        for i in range(11)
    }


def _links(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {name: html.unescape(href) for href, name in LINK.findall(response.content.decode())}


def _keys(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [row["license"].key for row in response.context["rows"]]


@pytest.mark.parametrize("sort", [*SORTS, *(f"-{s}" for s in SORTS)])
def test_next_and_previous_walk_every_license_once(client, licenses, sort) -> None:  # type: ignore[no-untyped-def]
    url = reverse("license-list")
    response = client.get(url, {"sort": sort})
    by_number = list(_keys(response))
    for number in range(2, 5):
        by_number += _keys(client.get(url, {"sort": sort, "page": number}))
    assert len(by_number) == 11 and set(by_number) == licenses

    pages = [_keys(response)]
    while "Next" in _links(response):
        assert "after=" in _links(response)["Next"]
        response = client.get(url + _links(response)["Next"])
        pages.append(_keys(response))
    assert [key for keys in pages for key in keys] == by_number  # the order of the pages by number
    assert response.context["page"].number == 4 and response.context["page"].count == 11

    back = []
    while "Previous" in _links(response):
        response = client.get(url + _links(response)["Previous"])
        back.append(_keys(response))
    assert back == pages[-2::-1]
    assert response.context["page"].number == 1


def test_a_bad_cursor_falls_back_to_the_page_number(client, licenses) -> None:  # type: ignore[no-untyped-def]
    url = reverse("license-list")
    second = _keys(client.get(url, {"page": 2}))
    for cursor in ("nonsense", "0:x", "6b06494d-ae33-43d8-acda-49b56a40c918:not-a-date"):
        response = client.get(url, {"page": 2, "after": cursor})
        assert response.status_code == 200 and _keys(response) == second
        response = client.get(url, {"page": 2, "before": cursor})
        # Not the page's rows in reverse, as before.
        assert response.status_code == 200 and _keys(response) == second


@pytest.mark.parametrize("sort", ["key", "-host", "product", "owner"])
def test_a_cursor_with_a_nul_reads_as_the_cursor_without_it(client, licenses, sort) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL refuses NUL in text: an edited link gave a server error on the text sorts.
    # The NUL is dropped before any view reads the query (portal.middleware.NulQueryMiddleware).
    url = reverse("license-list")
    cursor = "6b06494d-ae33-43d8-acda-49b56a40c918:host-1"
    for direction in ("after", "before"):
        expected = _keys(client.get(url, {"page": 2, "sort": sort, direction: cursor}))
        edited = cursor.replace("host", "host\x00")
        response = client.get(url, {"page": 2, "sort": sort, direction: edited})
        assert response.status_code == 200 and _keys(response) == expected, direction


@pytest.mark.parametrize("number", ["99999999999999999999999", str(2**62), "1" + "0" * 400])
def test_a_page_number_past_any_list_shows_the_last_page(client, licenses, number) -> None:  # type: ignore[no-untyped-def]
    # An OFFSET past PostgreSQL's bigint gave a server error.
    url = reverse("license-list")
    last = _keys(client.get(url, {"page": 4}))
    response = client.get(url, {"page": number})
    assert response.status_code == 200 and _keys(response) == last


def test_cursor_links_keep_the_filters_and_drop_from_sort_links(client, licenses) -> None:  # type: ignore[no-untyped-def]
    url = reverse("license-list")
    first = client.get(url, {"q": "host", "sort": "host"})
    second = client.get(url + _links(first)["Next"])
    assert "q=host" in _links(second)["Next"] and "sort=host" in _links(second)["Next"]
    body = second.content.decode()
    head = body[body.index("<thead") : body.index("</thead>")]
    switch = body[body.index('data-testid="status-switch"') : body.index("<thead")]
    assert "sort=" in head and "after=" not in head  # a new order starts at page 1
    assert "include=all" in switch and "after=" not in switch and "page=" not in switch
