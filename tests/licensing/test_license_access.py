"""Who reaches which license page: every URL outside the actor's reach is a 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from licensing.models import LicenseShare
from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

READ_URLS = ["license-detail", "license-file", "license-certificate", "license-certificate-pdf"]
MANAGE_GET_URLS = ["license-registration"]
MANAGE_POST_URLS = ["license-email", "license-custom-values", "license-renew", "license-rehost"]


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    admin = MembershipFactory(role="admin")
    member = MembershipFactory(role="member", organization=admin.organization)
    version = ProductVersionFactory(product=ProductFactory(node_locked=True))
    license = LicenseFactory(owner=admin.organization, version=version, host_id="HOST-1")
    reader = MembershipFactory()
    manager = MembershipFactory()
    LicenseShare.objects.create(
        license=license, email=reader.user.email, user=reader.user, access="read"
    )
    LicenseShare.objects.create(
        license=license, email=manager.user.email, user=manager.user, access="manage"
    )
    stranger = MembershipFactory()
    return {
        "license": license,
        "admin": admin.user,
        "member": member.user,
        "reader": reader.user,
        "manager": manager.user,
        "stranger": stranger.user,
    }


def _status(client, name: str, license, method: str = "get") -> int:  # type: ignore[no-untyped-def]
    url = reverse(name, kwargs={"pk": license.pk})
    return (client.post(url, {}) if method == "post" else client.get(url)).status_code


@pytest.mark.parametrize(
    ("actor", "read", "manage"),
    [
        ("admin", 200, True),
        ("member", 200, True),
        ("manager", 200, True),
        ("reader", 200, False),
        ("stranger", 404, False),
    ],
)
def test_access_matrix(client, world, actor, read, manage) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world[actor])
    license = world["license"]
    for name in READ_URLS:
        assert _status(client, name, license) == read, name
    for name in MANAGE_GET_URLS:
        expected = 200 if manage else (404 if read == 404 else 403)
        assert _status(client, name, license) == expected, name
    for name in MANAGE_POST_URLS:
        status = _status(client, name, license, "post")
        if read == 404:
            assert status == 404, name
        elif name == "license-custom-values" and actor not in ("admin", "member"):
            assert status == 403, name  # the owner's custom data: never a recipient's
        elif manage:
            assert status in (200, 302, 400), name
        else:
            assert status == 403, name


def test_anonymous_is_sent_to_login(client, world) -> None:  # type: ignore[no-untyped-def]
    for name in READ_URLS + MANAGE_GET_URLS:
        response = client.get(reverse(name, kwargs={"pk": world["license"].pk}))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_revoked_share_loses_access_on_next_request(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["reader"])
    license = world["license"]
    assert _status(client, "license-detail", license) == 200
    LicenseShare.objects.filter(user=world["reader"]).update(revoked_at="2026-01-01T00:00Z")
    assert _status(client, "license-detail", license) == 404
    assert _status(client, "license-file", license) == 404


def test_unknown_and_malformed_ids(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["admin"])
    assert client.get("/licenses/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/licenses/not-a-uuid/").status_code == 404


def test_user_without_shares_or_org_sees_nothing(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(UserFactory())
    assert client.get(reverse("license-list")).status_code == 302  # asked to create an org
