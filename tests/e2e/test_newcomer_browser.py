"""What a newcomer meets in the browser: focus in wizards and a tab order that matches what is
drawn, the top bar on a phone (with and without JavaScript), the account menu, the language
switcher without its button, the certificate's Print button and license keys that wrap at
dashes."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Page, expect

from licensing.models import License, SerialNumber
from portal.models import Membership
from tests.e2e.conftest import PHONE, NewContext
from tests.licensing.factories import LicenseFactory, SerialNumberFactory
from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The focused element: a field by its name, a button by its text.
FOCUSED = """() => {
    const element = document.activeElement;
    return element && (element.name || element.textContent.trim());
}"""


def member() -> Membership:
    return cast(Membership, MembershipFactory())


def log_in(page: Page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/dashboard/")


def focused(page: Page) -> str:
    return str(page.evaluate(FOCUSED))


def test_get_a_key_focuses_each_step_and_tabs_in_the_drawn_order(
    live_server: Any, web_page: Page
) -> None:
    page = web_page
    serial = cast(SerialNumber, SerialNumberFactory())
    log_in(page, live_server.url, member().user.email)
    page.goto(f"{live_server.url}/get-a-key/")
    assert focused(page) == "serial-serial"

    page.get_by_label("Serial number").fill(serial.code)
    page.keyboard.press("Enter")  # Enter moves forward
    expect(page.locator('.wizard-steps [aria-current="step"]')).to_contain_text("Registration")
    assert focused(page) == "registration-company"  # the step's first field

    # A refused submit: focus lands on the first field in error, not at the top of the page.
    page.get_by_label("Company").fill("Acme")
    page.get_by_label("Primary contact phone").fill("")
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".is-invalid").first).to_be_visible()
    first_invalid = page.evaluate(
        "() => document.querySelector('form [name].is-invalid, form .is-invalid [name]').name"
    )
    assert focused(page) == first_invalid

    # Back is drawn left of Next, and Tab reaches Back first, then Next.
    back = page.get_by_role("button", name="Back")
    forward = page.get_by_role("button", name="Next")
    back_box, next_box = back.bounding_box(), forward.bounding_box()
    assert back_box is not None and next_box is not None
    assert back_box["x"] < next_box["x"]
    back.focus()
    page.keyboard.press("Tab")
    assert focused(page) == "Next"

    # Enter in a field still moves forward (the hidden default button), never back.
    for label, value in {
        "Address": "Av. Paulista 1000",
        "Primary contact phone": "+55 11 5555-0100",
        "Technical contact phone": "+55 11 5555-0101",
    }.items():
        page.get_by_label(label).fill(value)
    page.get_by_label("Technical contact phone").press("Enter")
    expect(page.locator('.wizard-steps [aria-current="step"]')).to_contain_text("Confirm")
    back = page.get_by_role("button", name="Back")
    back.focus()
    page.keyboard.press("Tab")
    assert focused(page) == "Confirm"


def test_voucher_center_and_version_upgrade_focus_their_first_field(
    live_server: Any, web_page: Page
) -> None:
    page = web_page
    log_in(page, live_server.url, member().user.email)
    page.goto(f"{live_server.url}/vouchers/")
    assert focused(page) == "codes"
    page.get_by_role("button", name="Check codes").click()  # nothing entered: refused
    # An error about the whole form (neither codes nor a file): its alert has the focus, so it
    # is read first, and the next Tab is the codes field.
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Enter at least one voucher code")
    expect(alert).to_be_focused()
    page.keyboard.press("Tab")
    assert focused(page) == "codes"
    page.goto(f"{live_server.url}/upgrades/")
    assert focused(page) == "notification-notification_id"


def test_phone_top_bar_folds_behind_a_menu_button(
    live_server: Any, open_context: NewContext, results_dir: Path
) -> None:
    membership = member()
    phone = open_context(viewport=PHONE, is_mobile=True).new_page()
    log_in(phone, live_server.url, membership.user.email)
    bar = phone.get_by_role("navigation", name="Main navigation")
    height = bar.bounding_box()["height"]  # type: ignore[index]
    assert height < PHONE["height"] / 6, f"the top bar takes {height}px of {PHONE['height']}"
    my_licenses = bar.get_by_role("link", name="My licenses")
    expect(my_licenses).to_be_hidden()
    phone.get_by_test_id("menu-button").click()
    expect(my_licenses).to_be_visible()
    phone.screenshot(path=str(results_dir / "phone-menu-open.png"), full_page=True)
    my_licenses.click()
    expect(phone).to_have_url(f"{live_server.url}/licenses/")

    # Without JavaScript there is no button to press: the links are simply there.
    context = open_context(viewport=PHONE, is_mobile=True, java_script_enabled=False)
    no_js = context.new_page()
    log_in(no_js, live_server.url, membership.user.email)
    expect(no_js.get_by_test_id("menu-button")).to_be_hidden()
    expect(no_js.get_by_role("navigation").get_by_role("link", name="My licenses")).to_be_visible()
    expect(no_js.get_by_role("button", name="Go", exact=True)).to_be_visible()


def test_desktop_top_bar_has_the_controls_above_a_row_of_sections(
    live_server: Any, web_page: Page
) -> None:
    """At 1280 px the sections and the account controls sat side by side and wrapped into two or
    three interleaved rows; now the controls share the brand's row and the sections have one of
    their own below, and Tab reaches them in that drawn order."""
    page = web_page
    log_in(page, live_server.url, member().user.email)
    bar = page.get_by_role("navigation", name="Main navigation")
    tops = {
        round(box["y"])
        for box in (link.bounding_box() for link in bar.locator(".nav-link").all())
        if box
    }
    assert len(tops) == 1, f"the sections are on {len(tops)} rows"
    log_out = bar.get_by_role("button", name="Log out").bounding_box()
    brand = bar.locator(".navbar-brand").bounding_box()
    assert log_out and brand and abs(log_out["y"] - brand["y"]) < brand["height"]
    assert log_out["y"] + log_out["height"] <= min(tops)
    order = page.evaluate(
        """() => Array.from(document.querySelectorAll('nav a, nav button, nav select'))
            .filter((e) => e.getClientRects().length).map((e) => e.textContent.trim())"""
    )
    assert order.index("Log out") < order.index("Dashboard")


@pytest.mark.parametrize("locale", ["en-US", "pt-BR"])
def test_top_bar_sections_fold_or_fit_on_one_row(
    live_server: Any, open_context: NewContext, locale: str
) -> None:
    """Just above Bootstrap's lg breakpoint the eight sections no longer fit on their row and
    wrapped onto a second one (992-1199 px in English, up to 1399 px in Portuguese): between the
    phone menu and the widths where the row fits, the bar now keeps the menu button."""
    page = open_context(locale=locale).new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.locator("#id_login").fill(member().user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("main").locator("button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}/dashboard/")
    bar = page.locator("nav.navbar")  # its name is translated
    for width in (992, 1100, 1199, 1200, 1280, 1366, 1400):
        page.set_viewport_size({"width": width, "height": 800})
        page.reload()
        links = bar.locator(".nav-link")
        expect(links).to_have_count(8)
        if bar.get_by_test_id("menu-button").is_visible():
            expect(links.first).to_be_hidden()  # folded behind the menu button
            continue
        tops = {round(box["y"]) for box in (link.bounding_box() for link in links.all()) if box}
        assert len(tops) == 1, f"{locale} at {width} px: the sections are on {len(tops)} rows"


def test_account_menu_reaches_two_factor_authentication(live_server: Any, web_page: Page) -> None:
    page = web_page
    log_in(page, live_server.url, member().user.email)
    page.get_by_test_id("account-menu").click()
    page.get_by_role("link", name="Two-factor authentication").first.click()
    expect(page).to_have_url(f"{live_server.url}/accounts/2fa/")
    nav = page.get_by_test_id("account-nav")
    expect(nav.get_by_role("link", name="Email addresses")).to_be_visible()
    expect(nav.get_by_role("link", name="Change password")).to_be_visible()
    expect(nav.get_by_role("link", name="Two-factor authentication")).to_have_attribute(
        "aria-current", "page"
    )


def test_certificate_prints_and_a_long_key_wraps_at_dashes_on_a_phone(
    live_server: Any, open_context: NewContext, results_dir: Path
) -> None:
    membership = member()
    license = cast(License, LicenseFactory(owner=membership.organization))
    phone = open_context(viewport=PHONE, is_mobile=True).new_page()
    log_in(phone, live_server.url, membership.user.email)
    phone.goto(f"{live_server.url}/licenses/{license.pk}/")
    key = phone.get_by_test_id("license-key")
    expect(key).to_have_text(license.key)
    lines = key.evaluate(
        """element => {
            const range = document.createRange();
            range.selectNodeContents(element);
            const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
            return {lines: tops.size, scroll: element.scrollWidth, width: element.clientWidth,
                    page: document.documentElement.scrollWidth, viewport: window.innerWidth};
        }"""
    )
    assert lines["scroll"] <= lines["width"] and lines["page"] <= lines["viewport"], lines
    # Each line holds whole groups: the text of every line ends with a dash or the key's end.
    rendered = key.evaluate(
        """element => {
            const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
            const pieces = [];
            while (walker.nextNode()) {
                const node = walker.currentNode;
                for (let i = 0; i < node.length; i++) {
                    const range = document.createRange();
                    range.setStart(node, i); range.setEnd(node, i + 1);
                    pieces.push([node.data[i], Math.round(range.getBoundingClientRect().top)]);
                }
            }
            return pieces;
        }"""
    )
    for (char, top), (_next_char, next_top) in itertools.pairwise(rendered):
        if next_top != top:
            assert char == "-", f"the key breaks inside a group: {rendered}"
    phone.screenshot(path=str(results_dir / "license-key-phone.png"), full_page=True)

    phone.goto(f"{live_server.url}/licenses/{license.pk}/certificate/")
    phone.evaluate("() => { window.print = () => { window.__printed = true; }; }")
    phone.get_by_test_id("print-button").click()
    assert phone.evaluate("() => window.__printed === true")
