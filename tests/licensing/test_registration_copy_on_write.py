"""Editing one license's support registration never changes another license's.

Licenses of one voucher conversion share one registration row, and a version upgrade's new
license shares its source's: an edit copies the row for the edited license (copy on write).
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing.models import License, SupportRegistration
from licensing.services import REGISTRATION_FIELDS
from portal.models import AuditEvent
from tests.licensing.factories import REGISTRATION, LicenseFactory, SupportRegistrationFactory
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import catalog, licensed
from tests.vouchers.factories import vouchers
from tests.vouchers.wizard import walk as convert
from upgrades.models import UpgradeLine
from upgrades.services import notifications_create, upgrade_redeem

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role="admin")
    client.force_login(membership.user)
    return membership


def _edit(client, license: License, **changes: str):  # type: ignore[no-untyped-def]
    data = {name: getattr(license.registration, name) for name in REGISTRATION_FIELDS}
    return client.post(
        reverse("license-registration", kwargs={"pk": license.pk}), {**data, **changes}
    )


def test_editing_one_of_a_conversions_licenses_leaves_the_others(client, admin) -> None:  # type: ignore[no-untyped-def]
    codes = [v.code for v in vouchers(3)]
    convert(client, "\n".join(codes), combine=False)
    licenses = list(License.objects.order_by("issued_at"))
    assert len(licenses) == 3 and len({lic.registration_id for lic in licenses}) == 1
    shared = licenses[0].registration
    before = {name: getattr(shared, name) for name in REGISTRATION_FIELDS}

    response = _edit(client, licenses[0], technical_email="only-this@acme.example")
    assert response.status_code == 302

    for license in licenses:
        license.refresh_from_db()
    assert licenses[0].registration.technical_email == "only-this@acme.example"
    assert licenses[0].registration_id != shared.pk
    for other in licenses[1:]:
        assert other.registration_id == shared.pk
    shared.refresh_from_db()
    assert {name: getattr(shared, name) for name in REGISTRATION_FIELDS} == before
    # Audited on the edited license alone, saying it got its own copy.
    (event,) = AuditEvent.objects.filter(action="license.registration_changed")
    assert event.object_id == str(licenses[0].pk)
    assert event.details["changes"]["technical_email"]["to"] == "only-this@acme.example"
    assert event.details["copied_from"] == shared.pk

    # Its own row now: a second edit changes it in place.
    response = _edit(client, licenses[0], technical_phone="+55 11 0000-0000")
    licenses[0].refresh_from_db()
    assert licenses[0].registration.technical_phone == "+55 11 0000-0000"
    assert SupportRegistration.objects.count() == 2


def test_an_upgrades_new_license_and_its_source_change_separately(client, admin) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    source = licensed(admin.organization, old, quantity=10, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    upgraded = upgrade_redeem(
        line_id=UpgradeLine.objects.get().pk,
        quantity=4,
        organization=admin.organization,
        registration=REGISTRATION,
        actor=admin.user,
        token="cow-1",
    )
    source.refresh_from_db()
    assert upgraded.registration_id == source.registration_id

    _edit(client, upgraded, company="New Company Name")
    source.refresh_from_db()
    upgraded.refresh_from_db()
    assert upgraded.registration.company == "New Company Name"
    assert source.registration.company == REGISTRATION["company"]


def test_a_registration_of_one_license_is_edited_in_place(client, admin) -> None:  # type: ignore[no-untyped-def]
    registration = SupportRegistrationFactory(organization=admin.organization)
    license = LicenseFactory(owner=admin.organization, registration=registration)
    _edit(client, license, country="PT")
    license.refresh_from_db()
    assert license.registration_id == registration.pk
    assert license.registration.country == "PT"
    event = AuditEvent.objects.get(action="license.registration_changed")
    assert "copied_from" not in event.details
