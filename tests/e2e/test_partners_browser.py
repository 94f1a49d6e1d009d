"""A channel partner in real Chromium: act for a customer, get a key with its serial, and lose
access the moment the customer revokes the delegation; on a phone, its Customers page keeps every
action in reach."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from licensing.models import License, SerialNumber
from portal.models import Delegation, Membership
from tests.e2e.conftest import PHONE, NewContext
from tests.e2e.test_enterprise_flex_browser import BLANK_STACKED_CELLS, SCROLLED_SIDEWAYS
from tests.e2e.test_get_a_key_browser import (
    RESULT_URL,
    confirm,
    enter_serial,
    fill_registration,
    log_in,
    open_page,
)
from tests.licensing.factories import SerialNumberFactory
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    OrganizationFactory,
    PartnerFactory,
)

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
    # Asked first (portal.http.confirmation): nothing is revoked until the second click.
    expect(customer.get_by_test_id("confirm-consequences")).to_contain_text(
        "can no longer act for you"
    )
    assert Delegation.objects.get().status == Delegation.Status.ACTIVE
    customer.get_by_role("main").get_by_role("button", name="Revoke").click()
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


def test_on_a_phone_the_customers_actions_are_in_reach(
    live_server: Any, open_context: NewContext, results_dir: Path
) -> None:
    # At 390 px the customers' table scrolled inside its box: "Act for this customer" and
    # "Decline" were past the screen's right edge, reached only by scrolling the table sideways.
    partner_admin = cast(
        Membership, MembershipFactory(organization=PartnerFactory(name="Prime Channel Partners"))
    )
    partner = partner_admin.organization
    globex = OrganizationFactory(name="Globex Logistics")
    MembershipFactory(organization=globex)
    DelegationFactory(customer=globex, partner=partner)
    # An account the partner added, not claimed yet: its row has the "Invite again" form.
    DelegationFactory(customer=OrganizationFactory(name="Initech Brasil"), partner=partner)
    DelegationFactory(
        customer=OrganizationFactory(name="Acme Manufacturing"),
        partner=partner,
        status=Delegation.Status.OFFERED,
        starts_on=timezone.localdate() + timedelta(days=7),
    )
    partner_member = MembershipFactory(organization=partner, role=Membership.Role.MEMBER)
    width = PHONE["width"]
    for role, user, buttons in (
        (
            "admin",
            partner_admin.user,
            {"Act for this customer": 2, "Decline": 3, "Invite again": 1},
        ),
        (
            "member",
            partner_member.user,
            {"Act for this customer": 2, "Decline": 0, "Invite again": 1},
        ),
    ):
        page = open_context(viewport=PHONE, is_mobile=True).new_page()
        log_in(page, live_server.url, user.email)
        open_page(page, f"{live_server.url}/partners/customers/")
        main = page.get_by_role("main")
        for name, count in buttons.items():
            expect(main.get_by_role("button", name=name, exact=True)).to_have_count(count)
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
        # A member has no Decline: the starting-later card shows no empty strip for it.
        assert page.evaluate(BLANK_STACKED_CELLS) == []
        controls = main.locator("button, input:not([type=hidden])").all()
        assert len(controls) >= sum(buttons.values())
        for control in controls:
            control.scroll_into_view_if_needed()
            box = control.bounding_box()
            what = control.evaluate("e => e.outerHTML.slice(0, 120)")
            assert box is not None, what
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{box} {what}"
            sideways = control.evaluate(SCROLLED_SIDEWAYS)
            assert sideways is None, f"{what} needs scrolling {sideways} sideways"
            assert page.evaluate("() => window.scrollX") == 0, what
        page.screenshot(
            path=str(results_dir / f"partner-customers-phone-{role}.png"), full_page=True
        )
