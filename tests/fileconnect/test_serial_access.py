"""The serial number way in: unredeemed or redeemed by the organization grants its version; any
other serial gets Get a key's refusal and spends the same failed-attempt budget."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.urls import reverse

from fileconnect.models import DownloadEvent
from licensing.codes import generate_code
from licensing.models import SerialNumber
from licensing.services import serial_redeem
from portal.models import AuditEvent
from portal.selectors import SESSION_ORGANIZATION_KEY
from tests.fileconnect.factories import Catalog, member
from tests.fileconnect.pages import body, download_links
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.licensing.wizard import post_step

pytestmark = pytest.mark.django_db

UNKNOWN = "We could not find this serial number."


@pytest.fixture
def catalog() -> Catalog:
    return Catalog()


def enter(client: Any, code: str) -> Any:
    return client.post(reverse("fileconnect"), {"serial": code})


def test_unredeemed_serial_shows_its_version_and_downloads(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member(role="member")
    serial = SerialNumberFactory(version=catalog.v15)
    client.force_login(customer.user)
    response = enter(client, serial.code.lower().replace("-", " "))
    assert response.status_code == 302
    assert response["Location"] == reverse("fileconnect-serial", args=[serial.pk])
    page = client.get(response["Location"])
    assert set(download_links(page)) == {catalog.f15.pk, catalog.f15_linux.pk}
    text = page.content.decode()
    assert "a serial number gives access to its own version (15.0)" in text
    assert reverse("get-a-key") in text  # redeem it to start maintenance
    download = client.get(download_links(page)[catalog.f15.pk])
    assert body(download) == b"fifteen" * 100
    event = DownloadEvent.objects.get()
    assert (event.serial, event.license, event.organization) == (
        serial,
        None,
        customer.organization,
    )
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN  # looking is not redeeming


def test_serial_redeemed_by_own_organization_is_a_way_in(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    serial = SerialNumberFactory(version=catalog.v14)
    serial_redeem(
        code=serial.code,
        organization=customer.organization,
        registration=REGISTRATION,
        acting_user=customer.user,
    )
    client.force_login(customer.user)
    response = client.get(enter(client, serial.code)["Location"])
    assert set(download_links(response)) == {catalog.f14.pk}


def test_serial_redeemed_by_another_organization_reads_as_unknown(client, catalog) -> None:  # type: ignore[no-untyped-def]
    other, customer = member(), member()
    serial = SerialNumberFactory(version=catalog.v14)
    serial_redeem(
        code=serial.code,
        organization=other.organization,
        registration=REGISTRATION,
        acting_user=other.user,
    )
    client.force_login(customer.user)
    response = enter(client, serial.code)
    assert response.status_code == 200
    assert UNKNOWN in response.content.decode()
    assert client.get(reverse("fileconnect-serial", args=[serial.pk])).status_code == 404


def _mistyped(code: str) -> str:
    """The code with its check character changed (always wrong, unlike a fixed replacement)."""
    return code[:-1] + ("1" if code[-1] == "0" else "0")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "This field is required."),
        ("!!!", "This does not look like a serial number"),
        (_mistyped(generate_code()), "check the serial number for typos"),
        (generate_code(), UNKNOWN),
    ],
)
def test_bad_serials_are_refused_with_get_a_keys_words(client, code, message) -> None:  # type: ignore[no-untyped-def]
    client.force_login(member().user)
    response = enter(client, code)
    assert response.status_code == 200
    assert message in response.content.decode()


def test_void_and_expired_serials_are_refused(client, catalog) -> None:  # type: ignore[no-untyped-def]
    client.force_login(member().user)
    void = SerialNumberFactory(version=catalog.v14, status=SerialNumber.Status.VOID)
    expired = SerialNumberFactory(version=catalog.v14, expires_on=date(2020, 1, 1))
    assert UNKNOWN in enter(client, void.code).content.decode()
    assert "expired on 2020-01-01" in enter(client, expired.code).content.decode()


def test_failed_attempts_share_get_a_keys_budget(client, settings, catalog) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 3
    customer = member()
    client.force_login(customer.user)
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": generate_code()})  # one miss in Get a key
    enter(client, generate_code())  # two in FileConnect
    enter(client, generate_code())
    good = SerialNumberFactory(version=catalog.v14)
    refused = enter(client, good.code).content.decode()
    assert "Too many codes were not recognised" in refused
    assert AuditEvent.objects.filter(action="serial.rate_limited").count() == 1
    # …and Get a key refuses too: one budget.
    wizard = post_step(client, "serial", {"serial": good.code}).content.decode()
    assert "Too many codes were not recognised" in wizard


def test_serial_page_needs_the_serial_entered_in_this_session(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    serial = SerialNumberFactory(version=catalog.v14)
    client.force_login(customer.user)
    url = reverse("fileconnect-serial", args=[serial.pk])
    assert client.get(url).status_code == 404  # ids are not a way in
    link = download_links(client.get(enter(client, serial.code)["Location"]))[catalog.f14.pk]
    client.logout()
    client.force_login(customer.user)  # a new session has not entered it
    assert client.get(url).status_code == 404
    assert client.get(link).status_code == 404


def test_serial_redeemed_elsewhere_after_entry_stops_granting(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer, other = member(), member()
    serial = SerialNumberFactory(version=catalog.v14)
    client.force_login(customer.user)
    page_url = enter(client, serial.code)["Location"]
    link = download_links(client.get(page_url))[catalog.f14.pk]
    serial_redeem(
        code=serial.code,
        organization=other.organization,
        registration=REGISTRATION,
        acting_user=other.user,
    )
    assert client.get(page_url).status_code == 404
    assert client.get(link).status_code == 404


def test_serial_redeemed_by_one_organization_does_not_follow_into_another(client, catalog) -> None:  # type: ignore[no-untyped-def]
    customer = member()
    second = member(user=customer.user)
    serial = SerialNumberFactory(version=catalog.v14)
    serial_redeem(
        code=serial.code,
        organization=customer.organization,
        registration=REGISTRATION,
        acting_user=customer.user,
    )
    client.force_login(customer.user)
    session = client.session
    session[SESSION_ORGANIZATION_KEY] = customer.organization_id
    session.save()
    page_url = enter(client, serial.code)["Location"]
    assert client.get(page_url).status_code == 200
    client.post(reverse("organization-switch"), {"organization": second.organization_id})
    assert client.get(page_url).status_code == 404
