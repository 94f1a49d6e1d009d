"""Download links: signed, bound to one user and one file, valid for ten minutes."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.core import signing
from django.urls import reverse

from fileconnect.links import download_token
from fileconnect.models import DownloadEvent
from tests.fileconnect.factories import Catalog, member, share
from tests.fileconnect.pages import body, download_links, license_page, link_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> dict[str, Any]:
    catalog = Catalog()
    customer = member(role="member")
    colleague = member(role="member", organization=customer.organization)
    license = catalog.license(customer, catalog.v14)
    return {"catalog": catalog, "customer": customer, "colleague": colleague, "license": license}


def _later(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    now = time.time() + seconds
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: now))


def test_link_works_for_ten_minutes_then_asks_for_a_fresh_one(client, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    catalog, license = world["catalog"], world["license"]
    client.force_login(world["customer"].user)
    url = link_for(client, license, catalog.f14)
    _later(monkeypatch, 9 * 60)
    assert body(client.get(url)) == b"fourteen" * 100
    _later(monkeypatch, 10 * 60 + 5)
    response = client.get(url)
    assert response.status_code == 403
    page = response.content.decode()
    assert "this one has expired" in page
    assert reverse("fileconnect-link", args=[catalog.f14.pk]) in page
    assert f'value="license:{license.pk}"' in page  # the fresh link keeps the same license
    # The button issues a fresh link, which works.
    fresh = client.post(
        reverse("fileconnect-link", args=[catalog.f14.pk]), {"basis": f"license:{license.pk}"}
    )
    assert fresh.status_code == 302 and fresh["Location"] != url
    assert body(client.get(fresh["Location"])) == b"fourteen" * 100
    assert DownloadEvent.objects.filter(license=license).count() == 2


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature
        lambda token: "x" + token[1:],  # payload
        lambda token: token.split(":")[0],  # cut short
        lambda token: "..%2F..%2Fetc%2Fpasswd",  # a path is not a token
    ],
)
def test_tampered_link_is_refused_with_a_fresh_link_button(client, world, tamper) -> None:  # type: ignore[no-untyped-def]
    catalog = world["catalog"]
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], catalog.f14)
    token = url.rstrip("/").rsplit("/", 1)[1]
    response = client.get(url.replace(token, tamper(token)))
    assert response.status_code in (403, 404)
    if response.status_code == 403:
        assert "incomplete or was altered" in response.content.decode()
        assert "Get a new link" in response.content.decode()
    assert not DownloadEvent.objects.exists()


def test_link_for_another_file_does_not_open_this_one(client, world) -> None:  # type: ignore[no-untyped-def]
    catalog = world["catalog"]
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], catalog.f14)
    moved = url.replace(f"/files/{catalog.f14.pk}/", f"/files/{catalog.f15.pk}/")
    response = client.get(moved)
    assert response.status_code == 403  # entitled to 15.0 too, but this link is for 14.0
    assert "incomplete or was altered" in response.content.decode()


def test_another_users_link_is_refused_even_in_the_same_organization(client, world) -> None:  # type: ignore[no-untyped-def]
    catalog = world["catalog"]
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], catalog.f14)
    client.force_login(world["colleague"].user)
    response = client.get(url)
    assert response.status_code == 403
    assert "made for another user" in response.content.decode()
    assert not DownloadEvent.objects.exists()
    # The colleague is entitled too: the button gives them their own link.
    fresh = client.post(reverse("fileconnect-link", args=[catalog.f14.pk]), {"basis": ""})
    assert body(client.get(fresh["Location"])) == b"fourteen" * 100
    assert DownloadEvent.objects.get().user == world["colleague"].user


def test_another_users_expired_link_gives_no_hint_of_their_license(
    client, world, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    catalog = world["catalog"]
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], catalog.f14)
    _later(monkeypatch, 3600)
    client.force_login(world["colleague"].user)
    response = client.get(url)
    assert response.status_code == 403
    assert "made for another user" in response.content.decode()
    assert 'name="basis" value=""' in response.content.decode()


def test_link_of_a_user_no_longer_entitled_is_404(client, world) -> None:  # type: ignore[no-untyped-def]
    catalog, license = world["catalog"], world["license"]
    recipient = member()
    share(license, recipient.user)
    client.force_login(recipient.user)
    url = link_for(client, license, catalog.f14)
    license.shares.update(revoked_at="2026-01-01T00:00Z")
    assert client.get(url).status_code == 404
    assert client.post(reverse("fileconnect-link", args=[catalog.f14.pk])).status_code == 404


def test_links_are_fresh_on_every_page_load_and_name_the_user(client, world) -> None:  # type: ignore[no-untyped-def]
    catalog, license = world["catalog"], world["license"]
    client.force_login(world["customer"].user)
    token = download_token(
        user_id=world["customer"].user.pk, file_id=catalog.f14.pk, basis=f"license:{license.pk}"
    )
    payload = signing.TimestampSigner(salt="fileconnect.download-link").unsign_object(token)
    assert payload == {
        "u": world["customer"].user.pk,
        "f": catalog.f14.pk,
        "b": f"license:{license.pk}",
    }
    links = download_links(license_page(client, license))
    assert set(links) == {catalog.f14.pk, catalog.f15.pk, catalog.f15_linux.pk}
    assert all(f"/files/{pk}/download/" in url for pk, url in links.items())


@pytest.mark.parametrize(
    "basis", ["serial:²", "serial:١٢", "serial:-1", "license:not-a-uuid", "serial:", ":", "x" * 500]
)
def test_a_fresh_link_for_an_odd_basis_falls_back_to_what_entitles(client, world, basis) -> None:  # type: ignore[no-untyped-def]
    # "²" and Arabic-Indic digits are digits to str.isdigit() but not to int(): a 500 before.
    catalog, license = world["catalog"], world["license"]
    client.force_login(world["customer"].user)
    response = client.post(reverse("fileconnect-link", args=[catalog.f14.pk]), {"basis": basis})
    assert response.status_code == 302
    assert body(client.get(response["Location"])) == b"fourteen" * 100
    assert DownloadEvent.objects.get().license == license
