"""The download log: organization administrators see their organization's; staff see all."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from fileconnect.models import DownloadEvent
from tests.fileconnect.factories import Catalog, member, share
from tests.fileconnect.pages import body, link_for
from tests.portal.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    catalog = Catalog()
    admin = member(role="admin")
    colleague = member(role="member", organization=admin.organization)
    outsider = member(role="admin")
    license = catalog.license(admin, catalog.v14)
    outsider_license = catalog.license(outsider, catalog.v14)
    recipient = member(role="member")
    share(license, recipient.user)
    return locals()


def _download(client, user, license, release_file) -> None:  # type: ignore[no-untyped-def]
    client.force_login(user)
    assert body(client.get(link_for(client, license, release_file)))


def test_admin_sees_downloads_by_members_and_under_shared_licenses(client, world) -> None:  # type: ignore[no-untyped-def]
    catalog = world["catalog"]
    _download(client, world["colleague"].user, world["license"], catalog.f14)
    _download(client, world["recipient"].user, world["license"], catalog.f15)
    _download(client, world["outsider"].user, world["outsider_license"], catalog.f14)
    client.force_login(world["admin"].user)
    home = client.get(reverse("fileconnect")).content.decode()
    assert reverse("fileconnect-log") in home
    response = client.get(reverse("fileconnect-log"))
    assert response.status_code == 200
    page = response.content.decode()
    assert world["colleague"].user.email in page and world["recipient"].user.email in page
    assert world["outsider"].user.email not in page
    assert "esh-14.exe" in page and "esh-15.exe" in page
    assert "Completed" in page
    # The recipient's own organization's administrators see their user's download too.
    recipient_admin = member(role="admin", organization=world["recipient"].organization)
    client.force_login(recipient_admin.user)
    page = client.get(reverse("fileconnect-log")).content.decode()
    assert world["recipient"].user.email in page and "esh-15.exe" in page
    assert world["colleague"].user.email not in page


def test_log_table_stacks_into_cards_on_a_phone(client, world) -> None:  # type: ignore[no-untyped-def]
    """Six columns were 891 px wide on a 390 px phone: each download becomes a card there, every
    value under its column's name (data-label)."""
    _download(client, world["colleague"].user, world["license"], world["catalog"].f14)
    client.force_login(world["admin"].user)
    page = client.get(reverse("fileconnect-log")).content.decode()
    head, table = page.split('data-testid="download-log"')
    assert "table-stack" in head.rsplit("<table", 1)[1]
    row = table.split("<tbody>")[1].split("</tr>")[0]
    labels = ("Time", "User", "File", "License or serial number", "Bytes requested", "Status")
    assert row.count("<td ") == len(labels)
    for label in labels:
        assert f'data-label="{label}"' in row


def test_members_and_strangers_cannot_read_the_log(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["colleague"].user)
    assert client.get(reverse("fileconnect-log")).status_code == 403
    assert reverse("fileconnect-log") not in client.get(reverse("fileconnect")).content.decode()
    client.force_login(UserFactory())
    assert client.get(reverse("fileconnect-log")).status_code == 302  # no organization yet


def test_log_is_paginated_and_its_queries_bounded(
    client, world, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    catalog = world["catalog"]
    DownloadEvent.objects.bulk_create(
        DownloadEvent(
            user=world["colleague"].user,
            organization=world["admin"].organization,
            file=catalog.f14,
            license=world["license"],
            bytes_requested=100,
            delivery="stream",
            status="completed",
        )
        for _ in range(120)
    )
    client.force_login(world["admin"].user)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("fileconnect-log"))
    assert response.status_code == 200
    assert "Page 1 of 3" in response.content.decode()
    assert client.get(reverse("fileconnect-log"), {"page": "9999"}).status_code == 200


def test_staff_see_every_download_in_admin(admin_client, world) -> None:  # type: ignore[no-untyped-def]
    catalog = world["catalog"]
    DownloadEvent.objects.create(
        user=world["outsider"].user,
        organization=world["outsider"].organization,
        file=catalog.f14,
        license=world["outsider_license"],
        bytes_requested=5,
        delivery="stream",
        status="completed",
        created_at=date(2026, 1, 2).isoformat() + "T10:00Z",
    )
    changelist = admin_client.get(reverse("admin:fileconnect_downloadevent_changelist"))
    assert changelist.status_code == 200
    assert world["outsider"].user.email in changelist.content.decode()
    assert admin_client.get(reverse("admin:fileconnect_downloadevent_add")).status_code == 403
