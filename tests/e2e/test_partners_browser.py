"""A channel partner in real Chromium: act for a customer, get a key with its serial, and lose
access the moment the customer revokes the delegation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from licensing.models import License, SerialNumber
from portal.models import Delegation, Membership
from tests.e2e.conftest import NewContext
from tests.e2e.test_get_a_key_browser import (
    RESULT_URL,
    confirm,
    enter_serial,
    fill_registration,
    log_in,
    open_page,
)
from tests.licensing.factories import SerialNumberFactory
from tests.portal.factories import MembershipFactory, OrganizationFactory, PartnerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TECHNICAL_CONTACT = "tecnico@cliente.example"


def test_partner_obtains_a_key_for_its_customer_until_revoked(
    live_server: Any, open_context: NewContext, results_dir: Path
) -> None:
    customer_admin = cast(
        Membership, MembershipFactory(organization=OrganizationFactory(name="Cliente Final Ltda"))
    )
    partner_user = cast(
        Membership, MembershipFactory(organization=PartnerFactory(name="Revenda Parceira"))
    )
    serial = cast(SerialNumber, SerialNumberFactory(quantity=10))

    # The customer's administrator delegates to the partner by its account number.
    customer = open_context().new_page()
    log_in(customer, live_server.url, customer_admin.user.email)
    customer.get_by_role("link", name="Partners").first.click()
    customer.get_by_label("Partner account number").fill(partner_user.organization.account_number)
    customer.get_by_role("button", name="Delegate").click()
    expect(customer.get_by_role("alert")).to_contain_text("Revenda Parceira may now act for you")

    # The partner switches to the customer and gets a key with the customer's serial.
    partner: Page = open_context().new_page()
    log_in(partner, live_server.url, partner_user.user.email)
    partner.get_by_role("link", name="Customers").first.click()
    row = partner.get_by_role("row", name="Cliente Final Ltda")
    row.get_by_role("button", name="Act for this customer").click()
    banner = partner.get_by_test_id("acting-banner")
    expect(banner).to_contain_text("Acting for Cliente Final Ltda (by Revenda Parceira)")
    partner.get_by_role("link", name="Get a license key").first.click()
    enter_serial(partner, serial.code)
    partner.get_by_label("Technical contact email").fill(TECHNICAL_CONTACT)
    fill_registration(partner)
    confirm(partner, serial)
    expect(partner).to_have_url(RESULT_URL)
    license = License.objects.get()
    expect(partner.get_by_test_id("license-key")).to_have_text(license.key)
    assert license.owner == customer_admin.organization
    assert license.partner == partner_user.organization
    partner.screenshot(path=str(results_dir / "partner-acting-result.png"), full_page=True)

    # The customer's technical contact and its administrator received the key, with the file.
    sent = [m for m in mail.outbox if license.key in m.body]
    assert sent, [m.subject for m in mail.outbox]
    recipients = {address for message in sent for address in message.to}
    assert {TECHNICAL_CONTACT, customer_admin.user.email, partner_user.user.email} <= recipients
    assert "on your behalf by Revenda Parceira" in sent[0].body
    assert sent[0].attachments

    # The customer revokes; the partner's next page load is refused.
    customer.reload()
    customer.get_by_role("button", name="Revoke").click()
    expect(customer.get_by_role("alert")).to_contain_text("can no longer act for you")
    assert Delegation.objects.get().status == Delegation.Status.REVOKED
    response = partner.goto(f"{live_server.url}/licenses/")
    assert response is not None and response.status == 403
    expect(partner.get_by_test_id("delegation-ended")).to_contain_text(
        "Cliente Final Ltda revoked its delegation"
    )
    expect(partner.get_by_test_id("acting-banner")).to_have_count(0)
    partner.screenshot(path=str(results_dir / "partner-revoked.png"), full_page=True)

    # And the customer sees what the partner did.
    open_page(customer, f"{live_server.url}/organization/partners/")
    expect(customer.get_by_role("main")).to_contain_text("Obtained a license key")
    expect(customer.get_by_role("main")).to_contain_text(partner_user.user.email)
    customer.screenshot(path=str(results_dir / "partner-customer-trail.png"), full_page=True)
