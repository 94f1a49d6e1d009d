"""Bad input never gives a 500: every portal URL, with junk arguments, parameters and forms."""

from __future__ import annotations

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

OUR_APPS = ("portal", "licensing", "upgrades", "vouchers", "enterprise_flex", "fileconnect")
JUNK_QUERY = {
    "page": "-1",
    "sort": "'; drop table",
    "product": "x",
    "version": "99999999999",
    "status": "<b>",
    "expiring_before": "2026-13-45",
    "q": "%" * 300,
    "notification": "zz",
    "line": "-5",
    "next": "//evil.example",
}
JUNK_FORM = {
    "serial": "\x00" * 3,
    "email": "a" * 400,
    "access": "root",
    "quantity": "1e9",
    "host_id": "",
    "licenses": ["not-a-uuid"],
    "organization": "abc",
    "role": "god",
    "codes": "💥",
    "name": "",
    "field_type": "blob",
}


def _patterns(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found += _patterns(entry, prefix + str(entry.pattern))
        elif entry.callback.__module__.split(".")[0] in OUR_APPS:
            found.append((prefix + str(entry.pattern), entry))
    return found


def _fill(route: str, license_pk: str) -> str:
    path = "/" + route
    for token, value in (
        ("<uuid:pk>", license_pk),
        ("<int:pk>", "999999"),
        ("<str:token>", "nope"),
        ("<slug:token>", "nope"),
        ("<str:fmt>", "csv"),
        ("<str:number>", "EF-10000000"),
        ("<int:year>", "1"),
        ("<uuid:", "x"),
    ):
        path = path.replace(token, value)
    return path.split("<")[0] if "<" in path else path


ROUTES = sorted({route for route, _ in _patterns(get_resolver())})


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("who", ["anonymous", "member", "stranger"])
def test_no_server_error(client, route, who) -> None:  # type: ignore[no-untyped-def]
    owner = MembershipFactory(role="member")
    license = LicenseFactory(owner=owner.organization)
    if who == "member":
        client.force_login(owner.user)
    elif who == "stranger":
        client.force_login(MembershipFactory().user)
    for pk in (str(license.pk), str(uuid.uuid4())):
        path = _fill(route, pk)
        assert client.get(path, JUNK_QUERY).status_code < 500, path
        assert client.post(path, JUNK_FORM).status_code < 500, path
