"""My licenses: values no form on the page writes (an edited URL, a stale bookmark) in its hidden
inputs (include, sort) or a NUL in its search read as absent or stripped, never a server error."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from licensing.models import CustomField, License
from portal.models import Membership
from tests.enterprise_flex.factories import make_world
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

BAD_QUERIES = [
    {"include": "x"},
    {"include": "ALL"},
    {"sort": "\x00"},
    {"include": "\x00", "sort": "quantity"},
]


@pytest.fixture
def admin(client: Client) -> Membership:
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(membership.user)
    return membership


@pytest.mark.parametrize("query", BAD_QUERIES)
@pytest.mark.parametrize("fmt", [None, "csv", "xlsx"])
def test_a_bad_hidden_value_reads_as_absent(client, admin, query, fmt) -> None:  # type: ignore[no-untyped-def]
    current = LicenseFactory(owner=admin.organization, quantity=2)
    revoked = LicenseFactory(owner=admin.organization)
    License.objects.filter(pk=revoked.pk).update(status=License.Status.REVOKED)
    url = reverse("license-export", args=[fmt]) if fmt else reverse("license-list")
    response = client.get(url, query)
    assert response.status_code == 200
    if response.streaming:  # the export's query runs as the file is sent
        assert b"".join(response.streaming_content)
    if fmt is None:
        # The current licenses only (an include the page does not write is not "all"), sorted
        # as asked where the sort is one of the list's.
        assert [row["license"] for row in response.context["rows"]] == [current]
        assert response.context["sort"] == query.get("sort", "-issued").strip("\x00") or "-issued"


def test_a_bad_include_keeps_the_rest_of_the_query(client, admin) -> None:  # type: ignore[no-untyped-def]
    small = LicenseFactory(owner=admin.organization, quantity=1)
    large = LicenseFactory(owner=admin.organization, quantity=9)
    response = client.get(reverse("license-list"), {"include": "x", "sort": "-quantity"})
    assert [row["license"] for row in response.context["rows"]] == [large, small]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_a_bad_hidden_value_in_the_contract_catalog(client, query) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=5)
    client.force_login(world.super_user)
    response = client.get(reverse("ef-licenses", args=[world.contract.number]), query)
    assert response.status_code == 200


@pytest.mark.parametrize("query", ["include=x", "include=ALL", "sort=%00"])
@pytest.mark.parametrize("action", ["custom-values-bulk", "license-share"])
def test_a_bad_hidden_value_in_all_matching(client, admin, query, action) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    license = LicenseFactory(owner=admin.organization)
    data = {"all_matching": "1", "matching": query, "email": "x@example.com", "access": "read"}
    response = client.post(reverse(action), data)
    assert response.status_code in (200, 302)
    if action == "custom-values-bulk":
        assert response.context["licenses"] == [license]


def test_a_nul_in_the_search_is_dropped_and_the_rest_searched(client, admin) -> None:  # type: ignore[no-untyped-def]
    wanted = LicenseFactory(owner=admin.organization)
    LicenseFactory(owner=admin.organization)
    tail = wanted.key[-5:]
    response = client.get(reverse("license-list"), {"q": f"{tail[:2]}\x00{tail[2:]}"})
    assert response.status_code == 200
    assert [row["license"] for row in response.context["rows"]] == [wanted]
    assert f'value="{tail}"' in response.content.decode()  # what was searched
