"""My licenses shows what is current, says why it is empty, and finds a license by every serial
that touched it (issue 12); the count is capped and deep pages are read ids first (issue 13)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.template import Context, Template
from django.urls import reverse

from licensing.filters import MAINTENANCE_CHOICES
from licensing.models import License, SerialNumber
from licensing.services import serial_redeem
from licensing.templatetags.licensing_tags import MAINTENANCE_BADGES, STATUS_BADGES
from licensing.views import licenses as list_views
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    ProductVersionFactory,
    SerialNumberFactory,
)
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

TODAY = date.today()


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def _keys(response: Any) -> set[str]:
    return {row["license"].key for row in response.context["rows"]}


def _with_status(owner: Any, status: str) -> License:
    license = LicenseFactory(owner=owner)
    License.objects.filter(pk=license.pk).update(status=status)
    license.status = status
    return license


def test_current_licenses_by_default_with_a_switch_to_every_status(client, admin) -> None:  # type: ignore[no-untyped-def]
    org = admin.organization
    active = LicenseFactory(owner=org)
    superseded = _with_status(org, License.Status.SUPERSEDED)
    revoked = _with_status(org, License.Status.REVOKED)
    url = reverse("license-list")
    response = client.get(url)
    assert _keys(response) == {active.key}
    page = response.content.decode()
    assert "Showing current licenses." in page
    assert 'href="?include=all"' in page  # a plain link: no script needed
    every = client.get(url, {"include": "all"})
    assert _keys(every) == {active.key, superseded.key, revoked.key}
    assert 'href="?"' in every.content.decode()  # and back
    # An explicit status filter shows that status; the switch keeps the other filters.
    assert _keys(client.get(url, {"status": "revoked"})) == {revoked.key}
    with_sort = client.get(url, {"sort": "quantity"}).content.decode()
    assert 'href="?sort=quantity&amp;include=all"' in with_sort


def test_every_status_and_maintenance_state_has_its_own_badge() -> None:
    assert set(STATUS_BADGES) == set(License.Status.values)
    assert len(set(STATUS_BADGES.values())) == len(License.Status.values)
    template = Template("{% load licensing_tags %}{% status_badge license %}")
    for status in License.Status:
        html = template.render(Context({"license": License(status=status.value)}))
        assert f'class="badge {STATUS_BADGES[status]}"' in html
        assert str(status.label) in html
    # "inactive": a superseded or revoked license's maintenance is in no state.
    assert set(MAINTENANCE_BADGES) == {"active", "expiring", "expired", "inactive"}
    # The include the license page uses renders the same badge.
    include = Template('{% include "licensing/includes/_status_badge.html" %}')
    revoked = License(status=License.Status.REVOKED)
    assert STATUS_BADGES[License.Status.REVOKED] in include.render(Context({"license": revoked}))


def test_maintenance_filter_labels_are_not_status_words() -> None:
    labels = {str(label) for _value, label in MAINTENANCE_CHOICES}
    statuses = {str(label) for label in License.Status.labels}
    assert not labels & statuses
    assert all(label.startswith("Maintenance") for label in labels)


def test_empty_states_say_what_is_true(client, admin) -> None:  # type: ignore[no-untyped-def]
    url = reverse("license-list")
    none = client.get(url).content.decode()
    assert "You have no licenses yet." in none and reverse("get-a-key") in none
    _with_status(admin.organization, License.Status.SUPERSEDED)
    only_old = client.get(url).content.decode()
    assert "You have no current licenses." in only_old and "?include=all" in only_old
    LicenseFactory(owner=admin.organization)
    filtered = client.get(url, {"q": "nothing-like-this"}).content.decode()
    assert "No license matches these filters." in filtered
    assert 'href="?">Clear the filters' in filtered
    assert "You have no licenses yet." not in filtered


def test_search_box_is_outside_the_filter_panel(client, admin) -> None:  # type: ignore[no-untyped-def]
    page = client.get(reverse("license-list")).content.decode()
    search = page.index('type="search" name="q"')
    panel = page.index('<details class="card"')
    assert search < panel


def test_search_finds_a_license_by_every_serial_that_touched_it(client, admin) -> None:  # type: ignore[no-untyped-def]
    org, user = admin.organization, admin.user
    v1 = ProductVersionFactory(version="1.0")
    v2 = ProductVersionFactory(product=v1.product, version="2.0")
    original = SerialNumberFactory(version=v1)
    first = serial_redeem(
        code=original.code, organization=org, registration=REGISTRATION, acting_user=user
    ).license
    renewal = SerialNumberFactory(version=v1, kind=SerialNumber.Kind.RENEWAL)
    serial_redeem(
        code=renewal.code,
        organization=org,
        registration=None,
        acting_user=user,
        target_license_id=str(first.pk),
    )
    upgrade = SerialNumberFactory(version=v2, kind=SerialNumber.Kind.UPGRADE)
    upgraded = serial_redeem(
        code=upgrade.code,
        organization=org,
        registration=REGISTRATION,
        acting_user=user,
        target_license_id=str(first.pk),
    ).license
    LicenseFactory(owner=org)  # touched by none of them
    url = reverse("license-list")
    for serial in (original, renewal, upgrade):
        # By a part of the code (a whole one is cut to its last two groups by a redirect).
        fragment = serial.code[-11:]
        assert _keys(client.get(url, {"q": fragment})) == {upgraded.key}, serial.kind
        every = client.get(url, {"q": fragment, "include": "all"})
        assert _keys(every) == {first.key, upgraded.key}, serial.kind
    # Typed without dashes, in lower case.
    bare = renewal.code[-11:].replace("-", "").lower()
    assert _keys(client.get(url, {"q": bare, "include": "all"})) == {first.key, upgraded.key}


def test_serials_of_others_find_nothing(client, admin) -> None:  # type: ignore[no-untyped-def]
    other = MembershipFactory()
    serial = SerialNumberFactory()
    serial_redeem(
        code=serial.code,
        organization=other.organization,
        registration=REGISTRATION,
        acting_user=other.user,
    )
    LicenseFactory(owner=admin.organization)
    response = client.get(reverse("license-list"), {"q": serial.code[-11:], "include": "all"})
    assert _keys(response) == set()


def test_count_is_capped_and_pages_go_on(client, admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(list_views, "COUNT_CAP", 3)
    monkeypatch.setattr(list_views, "PAGE_SIZE", 2)
    made = [LicenseFactory(owner=admin.organization, quantity=n) for n in range(1, 8)]
    url = reverse("license-list")
    first = client.get(url, {"sort": "quantity"})
    assert "more than 3 licenses" in first.content.decode()
    assert "Page 1 of" not in first.content.decode()
    last = client.get(url, {"sort": "quantity", "page": "4"})
    assert [r["license"].quantity for r in last.context["rows"]] == [7]
    assert not last.context["page"].has_next
    # Past the end: the last page, as Django's paginator does.
    past = client.get(url, {"sort": "quantity", "page": "40"})
    assert [r["license"].quantity for r in past.context["rows"]] == [7]
    assert {r["license"].key for r in first.context["rows"]} == {made[0].key, made[1].key}
