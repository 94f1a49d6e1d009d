"""Get a key with a renewal or upgrade serial starts the contacts from the chosen license's own
support registration (as Version upgrade does), and keeps that registration when they are left
as they are; it prefilled the organization's latest registration, which kept unchanged silently
replaced the license's company and contacts with another site's."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import mail
from django.urls import reverse

from licensing.models import License, SerialNumber, SupportRegistration
from portal.models import AuditEvent, Membership
from tests.licensing.factories import (
    LicenseFactory,
    ProductVersionFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
)
from tests.licensing.wizard import post_step
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client) -> Membership:  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def _site(member: Membership, company: str, tech: str) -> SupportRegistration:
    return SupportRegistrationFactory(
        organization=member.organization, company=company, technical_email=tech
    )


def _license(member: Membership, version, registration, days: int = 60) -> License:  # type: ignore[no-untyped-def]
    return LicenseFactory(
        owner=member.organization,
        version=version,
        registration=registration,
        maintenance_end=date.today() + timedelta(days=days),
    )


def _shown(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The contacts as the registration step's page shows them (bound or prefilled)."""
    form = response.context["wizard"]["form"]
    return {name: str(form[name].value() or "") for name in SupportRegistration.FIELDS}


def _to_registration_step(client, serial: SerialNumber):  # type: ignore[no-untyped-def]
    client.get(reverse("get-a-key"))
    page = post_step(client, "serial", {"serial": serial.code})
    assert page.context["wizard"]["steps"].current == "registration"
    return page


def test_a_renewal_is_prefilled_with_its_license_registration_and_keeps_it(
    client, member, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    north = _site(member, "Plant North", "north@acme.example")
    license = _license(member, version, north)
    # Another site registered later: the organization's latest registration.
    _site(member, "Plant South", "south@acme.example")
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL)
    page = _to_registration_step(client, serial)
    shown = _shown(page)
    assert shown["company"] == "Plant North" and shown["technical_email"] == "north@acme.example"
    confirm = post_step(client, "registration", {**shown, "target_license": str(license.pk)})
    assert confirm.context["wizard"]["steps"].current == "confirm"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert post_step(client, "confirm").status_code == 302
    license.refresh_from_db()
    assert license.registration_id == north.pk
    event = AuditEvent.objects.get(action="license.renewed", object_id=str(license.pk))
    assert "registration_changes" not in event.details
    emailed = {address for message in mail.outbox for address in message.to}
    assert "north@acme.example" in emailed and "south@acme.example" not in emailed
    assert SupportRegistration.objects.count() == 2  # no copy either


def test_an_upgrade_keeps_its_license_registration(client, member) -> None:  # type: ignore[no-untyped-def]
    old_version = ProductVersionFactory(version="14.3", released_on=date(2024, 1, 10))
    north = _site(member, "Plant North", "north@acme.example")
    license = _license(member, old_version, north)
    _site(member, "Plant South", "south@acme.example")
    newer = ProductVersionFactory(
        product=old_version.product, version="15.0", released_on=date(2026, 3, 1)
    )
    serial = SerialNumberFactory(version=newer, kind=SerialNumber.Kind.UPGRADE, quantity=10)
    shown = _shown(_to_registration_step(client, serial))
    assert shown["company"] == "Plant North"
    post_step(client, "registration", {**shown, "target_license": str(license.pk)})
    assert post_step(client, "confirm").status_code == 302
    upgraded = License.objects.get(version=newer)
    assert upgraded.registration_id == north.pk


def test_several_licenses_left_with_another_sites_contacts_show_the_chosen_ones_first(
    client, member
) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    north = _site(member, "Plant North", "north@acme.example")
    south = _site(member, "Plant South", "south@acme.example")
    first = _license(member, version, north, days=30)
    _license(member, version, south, days=90)
    # The latest registration: neither license's.
    _site(member, "Head Office", "office@acme.example")
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL)
    shown = _shown(_to_registration_step(client, serial))
    assert shown["company"] == "Head Office"  # which license is not chosen yet
    stopped = post_step(client, "registration", {**shown, "target_license": str(first.pk)})
    assert stopped.context["wizard"]["steps"].current == "registration"
    assert "are now those of the license you chose" in stopped.content.decode()
    now_shown = _shown(stopped)
    assert now_shown["company"] == "Plant North"
    assert now_shown["technical_email"] == "north@acme.example"
    confirm = post_step(client, "registration", {**now_shown, "target_license": str(first.pk)})
    assert confirm.context["wizard"]["steps"].current == "confirm"
    assert post_step(client, "confirm").status_code == 302
    first.refresh_from_db()
    assert first.registration_id == north.pk
    event = AuditEvent.objects.get(action="license.renewed", object_id=str(first.pk))
    assert "registration_changes" not in event.details


def test_contacts_typed_for_the_license_still_replace_its_registration(client, member) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    north = _site(member, "Plant North", "north@acme.example")
    license = _license(member, version, north)
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL)
    shown = _shown(_to_registration_step(client, serial))
    typed = {**shown, "technical_email": "new-tech@acme.example"}
    confirm = post_step(client, "registration", {**typed, "target_license": str(license.pk)})
    assert confirm.context["wizard"]["steps"].current == "confirm"
    assert post_step(client, "confirm").status_code == 302
    license.refresh_from_db()
    assert license.registration.technical_email == "new-tech@acme.example"
    event = AuditEvent.objects.get(action="license.renewed", object_id=str(license.pk))
    assert set(event.details["registration_changes"]) == {"technical_email"}
