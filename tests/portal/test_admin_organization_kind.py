"""An organization's kind (customer or partner) stays once it holds anything made for it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import AuditEvent, Organization
from portal.services import PortalError, organization_staff_change
from tests.enterprise_flex.factories import EFContractFactory
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)
from tests.vouchers.factories import VoucherBatchFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _form(organization: Organization, **changes: str) -> dict[str, str]:
    return {
        "name": organization.name,
        "kind": organization.kind,
        "address": organization.address,
        "country": str(organization.country or ""),
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        **changes,
    }


@pytest.mark.parametrize(
    ("make", "kind", "other"),
    [
        (lambda: LicenseFactory().owner, "customer", "partner"),
        (lambda: EFContractFactory().organization, "customer", "partner"),
        (lambda: DelegationFactory().customer, "customer", "partner"),
        (lambda: DelegationFactory().partner, "partner", "customer"),
        (lambda: VoucherBatchFactory().oem, "partner", "customer"),
    ],
    ids=["licenses", "contract", "delegation-granted", "delegation-received", "voucher-batch"],
)
def test_the_kind_stays_once_the_organization_holds_something_of_it(  # type: ignore[no-untyped-def]
    staff_client, make, kind, other
) -> None:
    # Acme (licenses, an EF contract, delegations) became a partner in one click, unaudited.
    organization = make()
    assert organization.kind == kind
    url = reverse("admin:portal_organization_change", args=[organization.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert 'name="kind"' not in page.content.decode()  # shown, not editable
    response = staff_client.post(url, _form(organization, kind=other))
    assert response.status_code == 302
    organization.refresh_from_db()
    assert organization.kind == kind
    assert not AuditEvent.objects.filter(action="organization.changed").exists()
    # The service refuses it too (a record made between the page and the save).
    organization.kind = other
    with pytest.raises(PortalError, match="cannot change"):
        organization_staff_change(
            organization=organization, fields=["kind"], actor=UserFactory(is_staff=True)
        )
    organization.refresh_from_db()
    assert organization.kind == kind


def test_a_new_organization_changes_kind_and_it_is_audited(staff_client) -> None:  # type: ignore[no-untyped-def]
    organization = MembershipFactory().organization  # people only: created with the wrong kind
    url = reverse("admin:portal_organization_change", args=[organization.pk])
    response = staff_client.post(url, _form(organization, kind="partner", name="Prime Channel"))
    assert response.status_code == 302
    organization.refresh_from_db()
    assert (organization.kind, organization.name) == ("partner", "Prime Channel")
    event = AuditEvent.objects.get(action="organization.changed")
    assert event.actor is not None and event.actor.is_staff
    assert event.organization == organization
    assert event.details["changes"]["kind"] == {"from": "customer", "to": "partner"}
    assert event.details["changes"]["name"]["to"] == "Prime Channel"
    # Saved unchanged: nothing to audit.
    staff_client.post(url, _form(organization))
    assert AuditEvent.objects.filter(action="organization.changed").count() == 1


def test_a_refused_kind_change_raced_in_reads_as_a_message(staff_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The page read no ties; a license arrived before the save: a message, not a 500.
    organization = OrganizationFactory()
    url = reverse("admin:portal_organization_change", args=[organization.pk])
    import portal.admin

    monkeypatch.setattr(portal.admin, "organization_kind_ties", lambda organization: [])
    LicenseFactory(owner=organization)
    response = staff_client.post(url, _form(organization, kind="partner"), follow=True)
    assert response.status_code == 200
    assert "cannot change" in response.content.decode()
    organization.refresh_from_db()
    assert organization.kind == "customer"
