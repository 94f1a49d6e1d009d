"""What a license or a serial number entitles to: its version, later versions released while
maintenance was current, never withdrawn releases or other products."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from fileconnect.models import DownloadEvent
from fileconnect.services import release_file_restore, release_file_withdraw, release_withdraw
from licensing.models import License, LicenseShare, SerialNumber
from licensing.services import serial_redeem
from tests.fileconnect.factories import Catalog, add_file, member, share, version_of
from tests.fileconnect.pages import body, download_links, license_page, link_for
from tests.licensing.factories import REGISTRATION, ProductFactory, SerialNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


def test_license_gets_its_version_and_later_ones_released_during_maintenance(
    client, catalog
) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = catalog.license(customer, catalog.v14)  # maintenance 2024-06-01 .. 2025-06-01
    client.force_login(customer.user)
    response = license_page(client, license)
    links = download_links(response)
    assert set(links) == {catalog.f14.pk, catalog.f15.pk, catalog.f15_linux.pk}
    page = response.content.decode()
    # 16.0 came out after maintenance ended: listed, greyed, with the reason. A renewal now
    # would start a new period (license_renew) and not include it: the way to it is an upgrade.
    assert "Version 16.0" in page and "esh-16.exe" in page
    assert "maintenance ended on 2025-06-01" in page
    assert "#renew-title" not in page
    assert "Renewing maintenance now would not include it" in page
    assert f'href="{reverse("get-a-key")}"' in page
    assert 'data-entitled="false"' in page
    # Grouped by version, newest first, then by platform.
    assert page.index("Version 16.0") < page.index("Version 15.0") < page.index("Version 14.0")
    assert page.index(">Linux<") < page.index(">Windows x64<", page.index("Version 15.0"))


def test_a_drawn_down_license_past_its_contract_is_not_sent_to_renew_with_a_serial(
    client, catalog
) -> None:  # type: ignore[no-untyped-def]
    # Its maintenance follows the Enterprise Flexible contract and a renewal serial is refused
    # for it (licensing.services.license_renew_with_serial): the renew link led to that refusal.
    customer = member()
    license = catalog.license(customer, catalog.v14)
    License.objects.filter(pk=license.pk).update(source=License.Source.EF_DRAWDOWN)
    client.force_login(customer.user)
    page = license_page(client, license).content.decode()
    assert "maintenance ended on 2025-06-01" in page
    assert "Renewing maintenance now" not in page
    assert "Enterprise Flexible contract" in page


def test_maintenance_window_is_inclusive_and_bounded_on_both_sides(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    on_the_day = catalog.license(
        customer, catalog.v14, start=date(2025, 3, 1), end=date(2026, 3, 1)
    )
    client.force_login(customer.user)
    assert set(download_links(license_page(client, on_the_day))) >= {
        catalog.f15.pk,
        catalog.f16.pk,
    }
    late_start = catalog.license(
        customer, catalog.v14, start=date(2025, 4, 1), end=date(2027, 1, 1)
    )
    response = license_page(client, late_start)
    assert catalog.f15.pk not in download_links(response)
    assert catalog.f16.pk in download_links(response)
    assert "maintenance began on 2025-04-01" in (response.content.decode())


def test_earlier_versions_and_other_products_are_not_listed(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    other = add_file(version_of(ProductFactory(), "1.0", date(2025, 1, 1)), name="other.exe")
    license = catalog.license(customer, catalog.v15, start=date(2025, 1, 1), end=date(2025, 12, 1))
    client.force_login(customer.user)
    response = license_page(client, license)
    assert set(download_links(response)) == {catalog.f15.pk, catalog.f15_linux.pk}
    page = response.content.decode()
    assert "esh-14.exe" not in page and "other.exe" not in page
    # A link made up for a file the license does not cover is refused as if it did not exist.
    forged = link_for(client, license, catalog.f15).replace(
        f"/files/{catalog.f15.pk}/", f"/files/{other.pk}/"
    )
    assert client.get(forged).status_code == 404
    forged = link_for(client, license, catalog.f15).replace(
        f"/files/{catalog.f15.pk}/", f"/files/{catalog.f16.pk}/"
    )
    assert client.get(forged).status_code == 404  # greyed out: not downloadable either


def test_another_organizations_license_and_file_are_404(client, catalog) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = member(), member()
    license = catalog.license(owner, catalog.v14)
    client.force_login(owner.user)
    url = link_for(client, license, catalog.f14)
    client.force_login(stranger.user)
    assert license_page(client, license).status_code == 404
    assert client.get(url).status_code == 404
    assert client.post(reverse("fileconnect-link", args=[catalog.f14.pk])).status_code == 404
    assert not DownloadEvent.objects.exists()


def test_withdrawn_release_is_neither_listed_nor_served(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = catalog.license(customer, catalog.v14)
    client.force_login(customer.user)
    url = link_for(client, license, catalog.f15)
    release_withdraw(release=catalog.f15.release, actor=None)
    assert catalog.f15.pk not in download_links(license_page(client, license))
    assert "esh-15.exe" not in license_page(client, license).content.decode()
    refused = client.get(url)
    assert refused.status_code == 410
    assert "This file has been withdrawn" in refused.content.decode()
    assert client.post(reverse("fileconnect-link", args=[catalog.f15.pk])).status_code == 404
    assert not DownloadEvent.objects.exists()
    # The files stay, for audit.
    catalog.f15.refresh_from_db()
    assert catalog.f15.release.is_withdrawn


def test_a_withdrawn_file_is_neither_listed_nor_served_while_its_release_stays(  # type: ignore[no-untyped-def]
    client, catalog
) -> None:
    customer, stranger = member(), member()
    license = catalog.license(customer, catalog.v14)
    client.force_login(customer.user)
    url = link_for(client, license, catalog.f15)
    release_file_withdraw(release_file=catalog.f15, actor=None)
    links = download_links(license_page(client, license))
    assert catalog.f15.pk not in links
    assert catalog.f15_linux.pk in links  # the rest of the release is still offered
    assert "esh-15.exe" not in license_page(client, license).content.decode()
    # A link given before: a page that says so, not the file, and no new link.
    refused = client.get(url)
    assert refused.status_code == 410
    page = refused.content.decode()
    assert "This file has been withdrawn" in page
    assert "esh-15.exe is no longer offered for download." in page
    assert client.post(reverse("fileconnect-link", args=[catalog.f15.pk])).status_code == 404
    assert body(client.get(links[catalog.f15_linux.pk])) == b"fifteen-linux" * 100
    # Only the user the link was made for learns the file was withdrawn.
    client.force_login(stranger.user)
    assert client.get(url).status_code == 404
    assert list(DownloadEvent.objects.values_list("file", flat=True)) == [catalog.f15_linux.pk]
    # Restored, it is offered again.
    release_file_restore(release_file=catalog.f15, actor=None)
    client.force_login(customer.user)
    assert catalog.f15.pk in download_links(license_page(client, license))


def test_paid_upgrade_moves_entitlement_to_the_new_license(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    old = catalog.license(customer, catalog.v14)
    upgrade = SerialNumberFactory(
        version=catalog.v16, kind=SerialNumber.Kind.UPGRADE, quantity=old.quantity
    )
    new = serial_redeem(
        code=upgrade.code,
        organization=customer.organization,
        registration=REGISTRATION,
        acting_user=customer.user,
        target_license_id=str(old.pk),
    ).license
    old.refresh_from_db()
    assert old.status == License.Status.SUPERSEDED
    client.force_login(customer.user)
    home = client.get(reverse("fileconnect")).content.decode()
    assert reverse("fileconnect-license", args=[new.pk]) in home
    assert reverse("fileconnect-license", args=[old.pk]) not in home
    # Superseded licenses grant nothing; their page (linked from their emails) says so and
    # leads to the license that replaced them.
    replaced = license_page(client, old)
    assert replaced.status_code == 410
    assert "was replaced by an upgrade" in replaced.content.decode()
    assert reverse("fileconnect-license", args=[new.pk]) in replaced.content.decode()
    assert "/fileconnect/files/" not in replaced.content.decode()
    assert set(download_links(license_page(client, new))) == {catalog.f16.pk}


def test_a_superseded_license_leads_only_to_successors_its_reader_sees(client, catalog) -> None:  # type: ignore[no-untyped-def]
    owner, recipient, stranger = member(), member(role="member"), member()
    old = catalog.license(owner, catalog.v14)
    share(old, recipient.user)
    new = catalog.license(owner, catalog.v16)
    License.objects.filter(pk=new.pk).update(supersedes=old)
    License.objects.filter(pk=old.pk).update(status=License.Status.SUPERSEDED)
    client.force_login(recipient.user)  # the share of the old one is not a share of the new one
    page = license_page(client, old)
    assert page.status_code == 410
    text = page.content.decode()
    assert reverse("fileconnect-license", args=[new.pk]) not in text
    assert f"ask {owner.organization.name} to share it" in text
    client.force_login(stranger.user)  # a license the user cannot see stays unknown
    page = license_page(client, old)
    assert page.status_code == 404 and "was replaced" not in page.content.decode()


def test_revoked_license_grants_nothing_even_with_a_fresh_link(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    license = catalog.license(customer, catalog.v14)
    client.force_login(customer.user)
    url = link_for(client, license, catalog.f14)
    License.objects.filter(pk=license.pk).update(status=License.Status.REVOKED)
    assert client.get(url).status_code == 404
    page = license_page(client, license)
    assert page.status_code == 410 and "was revoked" in page.content.decode()
    assert "/fileconnect/files/" not in page.content.decode()


def test_shared_license_is_a_way_in_for_its_recipient(client, catalog) -> None:  # type: ignore[no-untyped-def]
    owner, recipient = member(), member(role="member")
    license = catalog.license(owner, catalog.v14)
    share(license, recipient.user)
    client.force_login(recipient.user)
    home = client.get(reverse("fileconnect")).content.decode()
    assert reverse("fileconnect-license", args=[license.pk]) in home and "Shared with you" in home
    url = link_for(client, license, catalog.f15)
    response = client.get(url)
    assert response.status_code == 200 and body(response) == b"fifteen" * 100
    event = DownloadEvent.objects.get()
    assert (event.user, event.organization, event.license) == (
        recipient.user,
        recipient.organization,
        license,
    )
    LicenseShare.objects.filter(license=license).update(revoked_at="2026-01-01T00:00Z")
    assert license_page(client, license).status_code == 404
    assert client.get(url).status_code == 404


def test_member_without_any_license_sees_an_empty_picker(client) -> None:  # type: ignore[no-untyped-def]
    customer = member(role="member")
    client.force_login(customer.user)
    response = client.get(reverse("fileconnect"))
    assert response.status_code == 200
    assert "No active licenses yet" in response.content.decode()
    assert 'for="id_serial"' in response.content.decode()


def test_anonymous_is_sent_to_log_in(client, catalog) -> None:  # type: ignore[no-untyped-def]
    for url in (
        reverse("fileconnect"),
        reverse("fileconnect-log"),
        reverse("fileconnect-download", args=[catalog.f14.pk, "x"]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
