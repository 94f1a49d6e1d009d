"""Get a license key in real Chromium, as a customer would: sign up or log in, walk the wizard,
read the key, download and verify the license file; on a phone without JavaScript; in Portuguese.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Locator, Page, expect

from licensing.codes import ALPHABET
from licensing.licensefile import verify_license_file
from licensing.models import License, SerialNumber
from licensing.signing import get_public_key
from portal.models import Membership
from tests.e2e.conftest import PHONE, NewContext
from tests.licensing.factories import SerialNumberFactory
from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RESULT_URL = re.compile(r"/get-a-key/result/[0-9a-f-]{36}/$")
SIGNUP_PASSWORD = "amber-lantern-quietly-47"
PHONES = {
    "Primary contact phone": "+55 11 5555-0100",
    "Technical contact phone": "+55 11 5555-0101",
}


# -- data, typed for the checker (factory-boy's stubs return the factory type) ---------------


def new_serial(quantity: int) -> SerialNumber:
    return cast(SerialNumber, SerialNumberFactory(quantity=quantity))


def new_member() -> Membership:
    """A user (password PASSWORD) who administers a new organization."""
    return cast(Membership, MembershipFactory())


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


def current_step(page: Page) -> Locator:
    return page.locator('.wizard-steps [aria-current="step"]')


def enter_serial(page: Page, code: str) -> None:
    expect(current_step(page)).to_contain_text("Serial number")
    page.get_by_label("Serial number").fill(code)
    page.get_by_role("button", name="Next").click()


def fill_registration(page: Page) -> None:
    """Keeps what the portal prefilled and completes whatever it left empty."""
    expect(current_step(page)).to_contain_text("Registration and contacts")
    for label, value in {"Address": "Av. Paulista 1000", "Country": "BR", **PHONES}.items():
        field = page.get_by_label(label)
        if not field.input_value():
            field.select_option(value) if label == "Country" else field.fill(value)
    page.get_by_role("button", name="Next").click()


def confirm(page: Page, serial: SerialNumber) -> None:
    expect(current_step(page)).to_contain_text("Confirm")
    summary = page.get_by_role("main").locator("dl")
    expect(summary).to_contain_text(serial.version.product.name)
    expect(summary).to_contain_text(serial.code)
    quantity = summary.locator("dt", has_text=re.compile(r"^\s*Quantity\s*$"))
    expect(quantity.locator("xpath=following-sibling::dd[1]")).to_have_text(str(serial.quantity))
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(RESULT_URL)


def shown_key_matches_database(page: Page) -> License:
    license = License.objects.get()
    expect(page.get_by_test_id("license-key")).to_have_text(license.key)
    return license


def check_result_page(page: Page, tmp_path: Path, results_dir: Path) -> None:
    """The key on screen is the one issued; the license file downloads and verifies offline."""
    license = shown_key_matches_database(page)
    link = page.get_by_role("link", name="Download license file")
    expect(link).to_be_visible()
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == license.file_name
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    payload = verify_license_file(
        saved.read_text(), license_key=license.key, public_key=get_public_key()
    )
    metadata = payload["data"]["attributes"]["metadata"]
    assert metadata["quantity"] == license.quantity

    for path in (results_dir / "get-a-key-result.png", tmp_path / "get-a-key-result.png"):
        page.screenshot(path=str(path), full_page=True)
        assert path.is_file() and path.stat().st_size > 0


def with_typo(code: str) -> str:
    """The code with its 4th character replaced: the check character catches it."""
    wrong = next(ch for ch in ALPHABET if ch != code[3])
    return code[:3] + wrong + code[4:]


# -- tests -----------------------------------------------------------------------------------


def test_sign_up_and_get_a_key(
    live_server: Any, web_page: Page, tmp_path: Path, results_dir: Path
) -> None:
    page = web_page
    serial = new_serial(5)

    open_page(page, f"{live_server.url}/accounts/signup/")
    page.get_by_label("Your name").fill("Ana Compradora")
    page.get_by_label("Email").fill("ana@compradora.example")
    page.get_by_label(re.compile(r"^Password:?$")).fill(SIGNUP_PASSWORD)
    page.get_by_label(re.compile(r"^Password \(again\)")).fill(SIGNUP_PASSWORD)
    page.get_by_label("Organization name").fill("Compradora Ltda")
    page.get_by_role("button", name="Sign Up").click()
    expect(page).to_have_url(f"{live_server.url}/dashboard/")
    expect(page.get_by_role("main")).to_contain_text("Compradora Ltda")

    page.get_by_role("main").get_by_role("link", name="Get a license key").click()
    expect(page).to_have_url(f"{live_server.url}/get-a-key/")
    enter_serial(page, serial.code)
    fill_registration(page)
    confirm(page, serial)
    check_result_page(page, tmp_path, results_dir)


def test_serial_with_a_typo_is_refused_then_the_right_one_accepted(
    live_server: Any, web_page: Page
) -> None:
    page = web_page
    membership = new_member()
    serial = new_serial(5)

    log_in(page, live_server.url, membership.user.email)
    page.get_by_role("main").get_by_role("link", name="Get a license key").click()
    expect(page).to_have_url(f"{live_server.url}/get-a-key/")

    enter_serial(page, with_typo(serial.code))
    expect(page.get_by_role("main")).to_contain_text("check the serial number for typos")
    expect(current_step(page)).to_contain_text("Serial number")

    field = page.get_by_label("Serial number")
    field.fill(serial.code)
    page.get_by_role("button", name="Next").click()
    expect(current_step(page)).to_contain_text("Registration and contacts")
    expect(page.get_by_role("main")).to_contain_text(serial.code)
    expect(page.get_by_label("Company")).to_have_value(membership.organization.name)
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN


def test_phone_without_javascript_gets_a_key(
    live_server: Any, open_context: NewContext, results_dir: Path
) -> None:
    context = open_context(viewport=PHONE, java_script_enabled=False, is_mobile=True)
    page = context.new_page()
    membership = new_member()
    serial = new_serial(3)

    log_in(page, live_server.url, membership.user.email)
    page.get_by_role("main").get_by_role("link", name="Get a license key").click()
    enter_serial(page, serial.code)
    fill_registration(page)
    confirm(page, serial)
    shown_key_matches_database(page)
    expect(page.get_by_role("link", name="Download license file")).to_be_visible()
    result_url = page.url

    # Measuring the layout needs JavaScript: the same session, same phone, in a second context.
    measuring = open_context(viewport=PHONE, is_mobile=True, storage_state=context.storage_state())
    phone = measuring.new_page()
    open_page(phone, result_url)
    expect(phone.get_by_test_id("license-key")).to_be_visible()
    widths = phone.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"horizontal scrollbar on a phone: {widths}"
    phone.screenshot(path=str(results_dir / "get-a-key-result-phone.png"), full_page=True)


def test_language_switcher_sets_the_page_language(live_server: Any, web_page: Page) -> None:
    page = web_page
    open_page(page, f"{live_server.url}/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # With JavaScript the choice applies at once; "Go" is there only for browsers without it.
    expect(page.get_by_role("button", name="Go", exact=True)).to_be_hidden()
    page.get_by_label("Language").select_option(label="Português Brasileiro")

    expect(page.locator("html")).to_have_attribute("lang", "pt-br")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")
    # The label is being translated: find the switcher by its id from here on.
    expect(page.locator("select#language")).to_have_value("pt-br")
    open_page(page, f"{live_server.url}/")
    expect(page.locator("html")).to_have_attribute("lang", "pt-br")


def test_a_confirm_page_whose_wizard_moved_on_says_so(
    live_server: Any, open_context: NewContext
) -> None:
    """Two tabs of one session, the second started over: the older Confirm page issues nothing
    and shows no result."""
    context = open_context()
    tab_a = context.new_page()
    membership = new_member()
    older, serial = new_serial(2), new_serial(5)

    log_in(tab_a, live_server.url, membership.user.email)
    open_page(tab_a, f"{live_server.url}/get-a-key/")
    enter_serial(tab_a, older.code)
    fill_registration(tab_a)
    confirm(tab_a, older)  # an earlier license: the unrelated result the bug used to show
    unrelated_url = tab_a.url

    open_page(tab_a, f"{live_server.url}/get-a-key/")
    enter_serial(tab_a, serial.code)
    fill_registration(tab_a)
    expect(current_step(tab_a)).to_contain_text("Confirm")

    tab_b = context.new_page()
    open_page(tab_b, f"{live_server.url}/get-a-key/")  # the menu, in a second tab
    # It shows the same progress; only its "Start over" begins a new wizard.
    expect(current_step(tab_b)).to_contain_text("Confirm")
    tab_b.get_by_role("button", name="Start over").click()
    expect(current_step(tab_b)).to_contain_text("Serial number")

    tab_a.get_by_role("button", name="Back").click()
    expect(tab_a.get_by_role("main")).to_contain_text(
        "This request started over; please check and confirm again."
    )
    expect(current_step(tab_a)).to_contain_text("Serial number")
    assert tab_a.url != unrelated_url
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN
    assert License.objects.count() == 1
