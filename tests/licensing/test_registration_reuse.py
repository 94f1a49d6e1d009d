"""Get a key links a new license to the support registration it was prefilled with when the
user confirms it unchanged, instead of writing a copy; sharing stays safe because editing one
license's registration copies a shared row."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from licensing.models import License, SupportRegistration
from licensing.services import registration_update, serial_redeem
from portal.models import AuditEvent
from tests.conftest import postgres_only
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
)
from tests.licensing.wizard import post_step, walk
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

ROUNDS = 10


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


@pytest.fixture
def earlier(member) -> License:  # type: ignore[no-untyped-def]
    """A license whose registration holds REGISTRATION: the next wizard is prefilled with it."""
    registration = SupportRegistrationFactory(organization=member.organization, **REGISTRATION)
    return LicenseFactory(owner=member.organization, registration=registration)


def test_an_unchanged_registration_is_reused(client, member, earlier) -> None:  # type: ignore[no-untyped-def]
    walk(client, SerialNumberFactory().code)
    new = License.objects.exclude(pk=earlier.pk).get()
    assert new.registration_id == earlier.registration_id
    assert SupportRegistration.objects.count() == 1


def test_a_changed_registration_is_a_new_row(client, member, earlier) -> None:  # type: ignore[no-untyped-def]
    walk(client, SerialNumberFactory().code, registration={"company": "Acme Brasil"})
    new = License.objects.exclude(pk=earlier.pk).get()
    assert new.registration_id != earlier.registration_id
    assert new.registration.company == "Acme Brasil"
    earlier.registration.refresh_from_db()
    assert earlier.registration.company == REGISTRATION["company"]


def test_a_registration_edited_before_confirm_is_not_reused(client, member, earlier) -> None:  # type: ignore[no-untyped-def]
    walk(client, SerialNumberFactory().code, confirm=False)
    # Another member edits the earlier license's registration (its own row: edited in place).
    registration_update(license=earlier, actor=member.user, data={"company": "Edited Co"})
    assert post_step(client, "confirm").status_code == 302
    new = License.objects.exclude(pk=earlier.pk).get()
    assert new.registration_id != earlier.registration_id
    assert new.registration.company == REGISTRATION["company"]  # what the user confirmed
    earlier.registration.refresh_from_db()
    assert earlier.registration.company == "Edited Co"


def test_editing_a_shared_registration_changes_only_that_license(client, member, earlier) -> None:  # type: ignore[no-untyped-def]
    walk(client, SerialNumberFactory().code)
    new = License.objects.exclude(pk=earlier.pk).get()
    assert new.registration_id == earlier.registration_id
    registration_update(license=new, actor=member.user, data={"technical_email": "n@acme.example"})
    new.refresh_from_db()
    earlier.refresh_from_db()
    assert new.registration_id != earlier.registration_id
    assert new.registration.technical_email == "n@acme.example"
    assert earlier.registration.technical_email == REGISTRATION["technical_email"]


def _race_round(member) -> None:  # type: ignore[no-untyped-def]
    registration = SupportRegistrationFactory(organization=member.organization, **REGISTRATION)
    earlier = LicenseFactory(owner=member.organization, registration=registration)
    serial = SerialNumberFactory()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(call) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait(timeout=30)
            call()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(
            target=run,
            args=(
                lambda: serial_redeem(
                    code=serial.code,
                    organization=member.organization,
                    registration=REGISTRATION,
                    acting_user=member.user,
                    registration_reuse_id=registration.pk,
                ),
            ),
        ),
        threading.Thread(
            target=run,
            args=(
                lambda: registration_update(
                    license=earlier, actor=member.user, data={"company": "Edited"}
                ),
            ),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    new = License.objects.get(source_ref=serial.code)
    earlier.refresh_from_db()
    assert new.registration.company == REGISTRATION["company"]
    assert earlier.registration.company == "Edited"
    assert new.registration_id != earlier.registration_id


@pytest.mark.postgres
@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_a_reuse_racing_an_edit_keeps_both_as_confirmed() -> None:
    """A mint reusing a registration and an edit of the license that holds it, at once: however
    they interleave, the new license has what its user confirmed and the edited one the edit."""
    member = MembershipFactory()
    for _ in range(ROUNDS):
        _race_round(member)


def test_an_address_posted_with_the_browsers_line_breaks_is_unchanged(client, member) -> None:  # type: ignore[no-untyped-def]
    # Stored with LF (the seed, an import); a browser posts the textarea's lines with CRLF: the
    # same address, so the registration is reused and no change is recorded anywhere.
    address = "Av. Paulista 1000\nSão Paulo - SP"
    registration = SupportRegistrationFactory(
        organization=member.organization, **{**REGISTRATION, "address": address}
    )
    earlier = LicenseFactory(owner=member.organization, registration=registration)
    posted = address.replace("\n", "\r\n")
    walk(client, SerialNumberFactory().code, registration={"address": posted})
    new = License.objects.exclude(pk=earlier.pk).get()
    assert new.registration_id == earlier.registration_id
    registration_update(license=earlier, actor=member.user, data={"address": posted})
    assert not AuditEvent.objects.filter(action="license.registration_changed").exists()
    # A new registration typed in a browser is stored with LF.
    walk(
        client,
        SerialNumberFactory().code,
        registration={"company": "Acme Brasil", "address": "Rua A 1\r\nRio"},
    )
    assert SupportRegistration.objects.get(company="Acme Brasil").address == "Rua A 1\nRio"
