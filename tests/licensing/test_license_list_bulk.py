"""Bulk actions from My licenses: "all N matching the filters" is resolved again on the server,
through the selectors, and never reaches a license the user may not act on."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue, License, LicenseShare
from licensing.views import licenses as list_views
from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client):  # type: ignore[no-untyped-def]
    admin = MembershipFactory()
    client.force_login(admin.user)
    org = admin.organization
    alpha = ProductVersionFactory(product=ProductFactory(name="Alpha"))
    beta = ProductVersionFactory(product=ProductFactory(name="Beta"))
    other = MembershipFactory()
    shared_alpha = LicenseFactory(owner=other.organization, version=alpha)
    LicenseShare.objects.create(
        license=shared_alpha, email=admin.user.email, user=admin.user, access="manage"
    )
    old_alpha = LicenseFactory(owner=org, version=alpha)
    License.objects.filter(pk=old_alpha.pk).update(status=License.Status.SUPERSEDED)
    return {
        "admin": admin,
        "alpha": alpha,
        "mine_alpha": [LicenseFactory(owner=org, version=alpha) for _ in range(3)],
        "mine_beta": LicenseFactory(owner=org, version=beta),
        "old_alpha": old_alpha,
        "shared_alpha": shared_alpha,  # visible, matches, but not ours to share
        "foreign_alpha": LicenseFactory(owner=other.organization, version=alpha),  # invisible
    }


def _shared_with(email: str) -> set[License]:
    return {s.license for s in LicenseShare.objects.filter(email=email, revoked_at__isnull=True)}


def test_share_all_matching_resolves_the_filters_on_the_server(client, world) -> None:  # type: ignore[no-untyped-def]
    matching = urlencode({"product": world["alpha"].product_id})
    response = client.post(
        reverse("license-share"),
        {
            "all_matching": "1",
            "matching": matching,
            "email": "auditor@example.com",
            "access": "read",
            # Ids posted beside the flag choose nothing: the filters do.
            "licenses": [str(world["mine_beta"].pk), str(world["foreign_alpha"].pk)],
        },
    )
    assert response.status_code == 302
    assert _shared_with("auditor@example.com") == set(world["mine_alpha"])


def test_share_all_matching_with_every_status(client, world) -> None:  # type: ignore[no-untyped-def]
    matching = urlencode({"product": world["alpha"].product_id, "include": "all"})
    response = client.post(
        reverse("license-share"),
        {"all_matching": "1", "matching": matching, "email": "a@example.com", "access": "read"},
        follow=True,
    )
    # The selection holds the superseded license too; it is history, so it is left out, and
    # the person is told (the upgrade copied its shares to the license that replaced it).
    assert _shared_with("a@example.com") == set(world["mine_alpha"])
    page = response.content.decode()
    assert "1 selected license is superseded or revoked" in page


def test_posted_filters_cannot_widen_the_selection(client, world) -> None:  # type: ignore[no-untyped-def]
    foreign = world["foreign_alpha"]
    for matching in (
        f"owner={foreign.owner_id}",
        f"q={foreign.key[-11:]}",
        "include=all&status=active&owner__in=1,2,3",
        "%%%garbage=&&",
    ):
        client.post(
            reverse("license-share"),
            {"all_matching": "1", "matching": matching, "email": "x@example.com", "access": "read"},
        )
        shared = _shared_with("x@example.com")
        assert foreign not in shared and world["shared_alpha"] not in shared, matching
        assert all(lic.owner_id == world["admin"].organization_id for lic in shared)


def test_ticked_ids_of_others_are_ignored(client, world) -> None:  # type: ignore[no-untyped-def]
    client.post(
        reverse("license-share"),
        {
            "licenses": [str(world["foreign_alpha"].pk), str(world["shared_alpha"].pk)],
            "email": "y@example.com",
            "access": "read",
        },
    )
    assert _shared_with("y@example.com") == set()


def test_too_many_matching_is_refused_with_a_message(client, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(list_views, "BULK_LIMIT", 2)
    response = client.post(
        reverse("license-share"),
        {"all_matching": "1", "matching": "", "email": "z@example.com", "access": "read"},
        follow=True,
    )
    assert response.status_code == 200
    assert "More than 2 licenses match these filters." in response.content.decode()
    assert _shared_with("z@example.com") == set()


def test_custom_data_for_all_matching(client, world) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(organization=world["admin"].organization, name="Team")
    matching = urlencode({"product": world["alpha"].product_id})
    page = client.post(reverse("custom-values-bulk"), {"all_matching": "1", "matching": matching})
    assert page.status_code == 200
    content = page.content.decode()
    assert 'name="all_matching" value="1"' in content and 'name="licenses"' not in content
    response = client.post(
        reverse("custom-values-bulk"),
        {"all_matching": "1", "matching": matching, "apply": "1", f"cf_{field.pk}": "Blue"},
    )
    assert response.status_code == 302
    written = {v.license for v in CustomFieldValue.objects.filter(field=field, value="Blue")}
    assert written == set(world["mine_alpha"])


def test_the_list_offers_both_selections(client, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(list_views, "PAGE_SIZE", 2)
    content = client.get(reverse("license-list"), {"sort": "quantity"}).content.decode()
    assert "data-select-page" in content  # the header checkbox (shown by script)
    assert 'name="all_matching"' in content and 'name="matching" value="sort=quantity"' in content
    assert "Every license matching the filters (5 listed)" in content
