"""My licenses in real Chromium: filter the list, open a license, share it read-only with
someone who has an account, then log in as that person and find it in their own list.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Locator, Page, expect

from licensing.models import CustomField, License, LicenseShare, Product, ProductVersion
from portal.models import Membership
from tests.e2e.conftest import PHONE
from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory
from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DETAIL_URL = re.compile(r"/licenses/[0-9a-f-]{36}/$")


# -- data, typed for the checker (factory-boy's stubs return the factory type) ---------------


def new_member() -> Membership:
    """A user (password PASSWORD) who administers a new organization."""
    return cast(Membership, MembershipFactory())


def new_version(product_name: str) -> ProductVersion:
    product = cast(Product, ProductFactory(name=product_name))
    return cast(ProductVersion, ProductVersionFactory(product=product))


def new_license(membership: Membership, version: ProductVersion) -> License:
    return cast(License, LicenseFactory(owner=membership.organization, version=version))


# -- steps a user takes ----------------------------------------------------------------------


def open_page(page: Page, url: str) -> None:
    """Navigates and fails at once on an error page instead of timing out on a missing field."""
    response = page.goto(url)
    assert response is not None
    assert response.ok, f"GET {url} answered {response.status} {response.status_text}"


def log_in(page: Page, base_url: str, email: str) -> None:
    open_page(page, f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/dashboard/")


def log_out(page: Page, base_url: str) -> None:
    nav = page.get_by_role("navigation", name="Main navigation")
    nav.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base_url}/")
    expect(nav.get_by_role("link", name="Log in")).to_be_visible()


def open_my_licenses(page: Page, base_url: str) -> None:
    nav = page.get_by_role("navigation", name="Main navigation")
    nav.get_by_role("link", name="My licenses").click()
    expect(page).to_have_url(f"{base_url}/licenses/")
    expect(page.get_by_role("heading", name="My licenses", level=1)).to_be_visible()


def license_rows(page: Page) -> Locator:
    return page.get_by_role("main").locator("table > tbody > tr")


def filter_by_product(page: Page, product: Product) -> None:
    page.get_by_text("Search and filter", exact=True).click()  # the <details> summary
    form = page.get_by_role("form", name="Search and filter")
    expect(form).to_be_visible()
    # Options read "<name> (<sku>)": Product.__str__.
    form.get_by_label("Product", exact=True).select_option(label=f"{product.name} ({product.sku})")
    form.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(rf"/licenses/\?(.*&)?product={product.pk}(&|$)"))


def share_read_only(page: Page, email: str) -> None:
    shares = page.get_by_role("region", name="Shared with")
    expect(shares).to_contain_text("Not shared with anyone.")
    shares.get_by_label("Share with (email address)").fill(email)
    shares.get_by_label("Access").select_option(label="Read-only")
    shares.get_by_role("button", name="Share", exact=True).click()
    expect(page).to_have_url(DETAIL_URL)
    expect(page.get_by_role("alert")).to_have_text(f"Shared 1 license with {email}.")
    shared = page.get_by_role("region", name="Shared with").get_by_role("listitem")
    expect(shared).to_have_count(1)
    expect(shared).to_contain_text(f"{email} · Read-only")


# -- the test --------------------------------------------------------------------------------


def test_filter_open_share_and_recipient_sees_it(
    live_server: Any, web_page: Page, results_dir: Path
) -> None:
    page = web_page
    base = live_server.url
    owner = new_member()
    recipient = new_member()
    alpha = new_version("Alpha Shield")
    beta = new_version("Beta Gateway")
    alphas = [new_license(owner, alpha), new_license(owner, alpha)]
    shared = new_license(owner, beta)
    owner_org = owner.organization.name

    # The owner narrows the list down to one product.
    log_in(page, base, owner.user.email)
    open_my_licenses(page, base)
    expect(page.get_by_test_id("license-count")).to_have_text("3 licenses")
    expect(license_rows(page)).to_have_count(3)
    filter_by_product(page, beta.product)
    expect(page.get_by_test_id("license-count")).to_have_text("1 license")
    rows = license_rows(page)
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Beta Gateway")
    expect(page.get_by_role("main").locator("table")).not_to_contain_text("Alpha Shield")

    # ...opens the license from its row and shares it read-only.
    rows.get_by_role("link", name="Beta Gateway").click()
    expect(page).to_have_url(f"{base}/licenses/{shared.pk}/")
    expect(page.get_by_test_id("license-key")).to_have_text(shared.key)
    share_read_only(page, recipient.user.email)
    share = LicenseShare.objects.get(license=shared)
    assert (share.user_id, share.access) == (recipient.user.pk, LicenseShare.Access.READ)

    # The recipient, who already has an account, finds it in their own list.
    log_out(page, base)
    log_in(page, base, recipient.user.email)
    open_my_licenses(page, base)
    expect(page.get_by_test_id("license-count")).to_have_text("1 license")
    rows = license_rows(page)
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Beta Gateway")
    expect(rows.locator(".badge", has_text="shared by")).to_have_text(f"shared by {owner_org}")
    table = page.get_by_role("main").locator("table")
    expect(table).not_to_contain_text("Alpha Shield")
    for other in alphas:
        expect(table).not_to_contain_text(other.key)
    # Only the owner's administrators share: no checkbox on a shared row.
    expect(rows.get_by_role("checkbox")).to_have_count(0)

    screenshot = results_dir / "my-licenses-shared.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.is_file() and screenshot.stat().st_size > 0

    rows.get_by_role("link", name="Beta Gateway").click()
    expect(page).to_have_url(f"{base}/licenses/{shared.pk}/")
    main = page.get_by_role("main")
    expect(page.get_by_test_id("license-key")).to_have_text(shared.key)
    expect(main.locator(".badge", has_text="Read-only")).to_be_visible()
    expect(main.locator(".badge", has_text="shared by")).to_have_text(f"shared by {owner_org}")
    expect(main.get_by_role("heading", name="Renew maintenance")).to_have_count(0)
    expect(main.get_by_role("region", name="Shared with")).to_have_count(0)
    expect(main.get_by_role("button", name="Email key again")).to_have_count(0)


def test_phone_list_has_no_sideways_scroll_and_page_selection_works(
    live_server: Any, open_context: Any, results_dir: Path
) -> None:
    owner = new_member()
    version = new_version("Gamma Endpoint Protection Suite")
    for _ in range(3):
        license = new_license(owner, version)
        license.host_id = "LAB-SERVER-WITH-A-VERY-LONG-HOST-NAME-0001.example.com"
        license.save(update_fields=["host_id"])
    CustomField.objects.create(organization=owner.organization, name="Cost center")
    page = open_context(viewport=PHONE).new_page()
    log_in(page, live_server.url, owner.user.email)
    open_page(page, f"{live_server.url}/licenses/")
    # The search box is there without opening the filter panel.
    expect(page.get_by_role("searchbox", name="Search")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"
    table = page.get_by_role("main").locator("table")
    assert page.evaluate(
        "(t) => t.scrollWidth <= t.parentElement.clientWidth", table.element_handle()
    )
    rows = license_rows(page)
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Gamma Endpoint Protection Suite")
    # Below 576 px each cell is a line under its column's label (CSS ::before, data-label).
    expect(rows.first.locator('td[data-label="Maintenance ends"]')).to_be_visible()
    # "Select all on this page" (script) ticks every row.
    page.locator("#select-page-phone").check()  # the header's twin, shown on a phone
    expect(rows.get_by_role("checkbox").and_(page.locator(":checked"))).to_have_count(3)
    page.screenshot(path=str(results_dir / "my-licenses-phone.png"), full_page=True)
    # The keyboard never lands on the column headers hidden on a phone (their sort links and
    # Select all were clipped to 1 px, not hidden: focus went where nothing showed it).
    page.locator("#select-page-phone").focus()
    for _ in range(15):
        page.keyboard.press("Tab")
        size = page.evaluate(
            "(() => { const r = document.activeElement.getBoundingClientRect();"
            " return [r.width, r.height]; })()"
        )
        assert min(size) > 2, f"focus on an element of {size[0]}×{size[1]} px"
    # A long technical contact's address wraps inside its card on the license's page.
    registration = license.registration
    registration.technical_email = (
        "averyveryverylongtechnicalcontactname.with.dots@subdomain.engineering.example.com"
    )
    registration.save(update_fields=["technical_email"])
    open_page(page, f"{live_server.url}/licenses/{license.pk}/")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the license's page scrolls sideways by {overflow} px"


def test_phone_license_page_wraps_a_long_host_id(
    live_server: Any, open_context: Any, results_dir: Path
) -> None:
    # A host ID without a dash or a space (a 60-character hardware fingerprint) pushed the
    # license's page sideways at 390 px: in the facts, the revoked keys and the history.
    from licensing.services import license_rehost

    owner = new_member()
    product = cast(Product, ProductFactory(name="Delta Node Guard", node_locked=True))
    version = cast(ProductVersion, ProductVersionFactory(product=product))
    license = cast(
        License,
        LicenseFactory(owner=owner.organization, version=version, host_id="A1B2C3D4E5" * 6),
    )
    license = license_rehost(license=license, host_id="F6E5D4C3B2" * 6, actor=owner.user)
    page = open_context(viewport=PHONE).new_page()
    log_in(page, live_server.url, owner.user.email)
    open_page(page, f"{live_server.url}/licenses/{license.pk}/")
    expect(page.get_by_role("main")).to_contain_text("F6E5D4C3B2" * 6)
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    page.screenshot(path=str(results_dir / "license-long-host-id-phone.png"), full_page=True)
    assert widths == [PHONE["width"], PHONE["width"]], f"scroll width, window: {widths}"
