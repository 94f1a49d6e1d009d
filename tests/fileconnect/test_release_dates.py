"""Versions and releases dated after today: staff stage a launch ahead, and nothing of it is
listed (not even greyed out) or served before its date, whatever the way in."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from fileconnect.models import DownloadEvent, Release
from portal.models import Membership
from portal.policy import Scope
from tests.fileconnect.factories import Catalog, add_file, license_of, member, version_of
from tests.fileconnect.pages import body, download_links, license_page, link_for
from tests.licensing.factories import SerialNumberFactory
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory

pytestmark = pytest.mark.django_db

NOT_RELEASED = "This file is not released yet"


def ahead(days: int) -> date:
    return timezone.localdate() + timedelta(days=days)


class Staged(Catalog):
    """The catalog, plus what staff staged ahead: 16.1 (a release of the released 16.0 dated
    next month), 17.0 in six months and 18.0 in three years, each with a file."""

    def __init__(self) -> None:
        super().__init__()
        hotfix = Release.objects.create(version=self.v16, released_on=ahead(30))
        self.f16_1 = add_file(self.v16, b"hotfix" * 100, name="esh-16.1.exe", release=hotfix)
        self.v17 = version_of(self.product, "17.0", ahead(180))
        self.f17 = add_file(self.v17, b"seventeen" * 100, name="esh-17.exe")
        self.v18 = version_of(self.product, "18.0", ahead(3 * 365))
        self.f18 = add_file(self.v18, b"eighteen" * 100, name="esh-18.exe")

    def current(self, membership: Membership) -> Any:
        """A 16.0 license whose maintenance runs two years more: past 17.0, not to 18.0."""
        return license_of(membership, self.v16, start=date(2026, 1, 1), end=ahead(2 * 365))


@pytest.fixture
def staged() -> Staged:
    return Staged()


def _no_link_to_what_is_staged(client: Any, staged: Staged) -> None:
    for release_file in (staged.f16_1, staged.f17, staged.f18):
        fresh = client.post(reverse("fileconnect-link", args=[release_file.pk]))
        assert fresh.status_code == 404


def test_what_is_dated_after_today_is_neither_listed_nor_served(client, staged) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = staged.current(customer)
    client.force_login(customer.user)
    response = license_page(client, license)
    assert set(download_links(response)) == {staged.f16.pk}
    page = response.content.decode()
    for unreleased in ("esh-16.1.exe", "Version 17.0", "esh-17.exe", "Version 18.0", "esh-18"):
        assert unreleased not in page
    # 18.0 is not greyed out with a "maintenance ended" date that is itself still to come.
    assert 'data-entitled="false"' not in page
    _no_link_to_what_is_staged(client, staged)


def test_a_link_made_before_the_date_moved_ahead_is_refused_with_a_clear_page(
    client, staged
) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = staged.current(customer)
    client.force_login(customer.user)
    url = link_for(client, license, staged.f16)
    Release.objects.filter(pk=staged.f16.release_id).update(released_on=ahead(7))
    response = client.get(url)
    assert response.status_code == 404
    assert NOT_RELEASED in response.content.decode()
    assert "esh-16.exe" in response.content.decode()
    assert client.post(reverse("fileconnect-link", args=[staged.f16.pk])).status_code == 404
    assert not DownloadEvent.objects.exists()
    # Anyone else holding the link learns nothing of the staged file.
    colleague = MembershipFactory(organization=customer.organization, role="admin")
    client.force_login(colleague.user)
    response = client.get(url)
    assert response.status_code == 404 and NOT_RELEASED not in response.content.decode()


def test_on_its_date_a_staged_version_is_listed_and_served(client, staged) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = staged.current(customer)
    staged.v17.released_on = timezone.localdate()
    staged.v17.save(update_fields=["released_on"])
    Release.objects.filter(version=staged.v17).update(released_on=timezone.localdate())
    client.force_login(customer.user)
    links = download_links(license_page(client, license))
    assert set(links) == {staged.f16.pk, staged.f17.pk}
    assert body(client.get(links[staged.f17.pk])) == b"seventeen" * 100


def test_a_serial_number_of_a_staged_version_or_release_shows_nothing_of_it(client, staged) -> None:  # type: ignore[no-untyped-def]
    customer = member(role="member")
    client.force_login(customer.user)
    for serial_version, listed in ((staged.v16, {staged.f16.pk}), (staged.v17, set())):
        serial = SerialNumberFactory(version=serial_version)
        entered = client.post(reverse("fileconnect"), {"serial": serial.code})
        page = client.get(entered["Location"])
        assert set(download_links(page)) == listed
        assert "esh-16.1.exe" not in page.content.decode()
        assert "esh-17.exe" not in page.content.decode()
        fresh = client.post(
            reverse("fileconnect-link", args=[staged.f17.pk]), {"basis": f"serial:{serial.pk}"}
        )
        assert fresh.status_code == 404


def test_a_partner_downloading_for_its_customer_sees_nothing_staged(client, staged) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = staged.current(customer)
    partner = MembershipFactory(role="admin", organization=PartnerFactory())
    delegation = DelegationFactory(
        customer=customer.organization,
        partner=partner.organization,
        scopes=[Scope.DOWNLOAD_SOFTWARE],
    )
    client.force_login(partner.user)
    client.post(reverse("partner-act", args=[delegation.pk]))
    response = license_page(client, license)
    assert set(download_links(response)) == {staged.f16.pk}
    assert "esh-17.exe" not in response.content.decode()
    _no_link_to_what_is_staged(client, staged)
