"""The Voucher center in real Chromium: paste codes (one with a typo), read the preview, convert
the good ones; and the same on a phone without JavaScript.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from licensing.models import License
from tests.e2e.conftest import PHONE, NewContext
from tests.portal.factories import PASSWORD, MembershipFactory
from tests.vouchers.factories import vouchers, with_typo
from vouchers.models import Voucher

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RESULT_URL = re.compile(r"/vouchers/conversions/[0-9a-f-]{36}/$")
MISSING = {
    "Address": "Av. Paulista 1000",
    "Country": "BR",  # a select of countries: the option's value
    "Primary contact phone": "+55 11 5555-0100",
    "Technical contact phone": "+55 11 5555-0101",
}


def open_page(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, f"GET {url}: {response and response.status}"


def log_in(page: Page, base_url: str, email: str) -> None:
    open_page(page, f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/dashboard/")


def current_step(page: Page) -> Any:
    return page.locator('.wizard-steps [aria-current="step"]')


def convert_two_of_three(
    page: Page, base_url: str, screenshots: Path | None = None
) -> tuple[list[Voucher], str]:
    """Dashboard → codes → preview → registration → confirm → result; returns what was used."""
    good = vouchers(2, quantity_per_voucher=5)
    typo = with_typo(vouchers(1)[0].code)
    product = good[0].batch.version.product.name

    page.get_by_role("main").get_by_role("link", name="Convert vouchers").click()
    expect(page).to_have_url(f"{base_url}/vouchers/")
    expect(current_step(page)).to_contain_text("Voucher codes")
    # As pasted from an email: one per line, another case, one without its dashes.
    page.get_by_label("Voucher codes").fill(
        f"{good[0].code}\n{typo.lower()}\n{good[1].code.replace('-', '')}"
    )
    page.get_by_role("button", name="Check codes").click()

    expect(page).to_have_url(f"{base_url}/vouchers/preview/")
    preview = page.get_by_test_id("voucher-preview")
    expect(preview.locator("tbody tr")).to_have_count(3)
    for voucher in good:
        row = preview.locator("tr", has_text=voucher.code)
        expect(row).to_contain_text(product)
        expect(row).to_contain_text("Can be converted")
        expect(row.locator("td").nth(2)).to_have_text("5")
    bad_row = preview.locator("tr", has_text=typo.lower())
    expect(bad_row).to_contain_text("check the code for typos")
    expect(page.get_by_role("main")).to_contain_text("2 of 3 codes can be converted")
    combine = page.get_by_label("Combine vouchers of the same product and version into one license")
    expect(combine).to_be_checked()
    assert not License.objects.exists()  # nothing written yet
    if screenshots is not None:
        page.screenshot(path=str(screenshots / "voucher-center-preview.png"), full_page=True)
    page.get_by_role("button", name="Next").click()

    expect(current_step(page)).to_contain_text("Registration and contacts")
    for label, value in MISSING.items():
        field = page.get_by_label(label)
        if not field.input_value():
            field.select_option(value) if label == "Country" else field.fill(value)
    page.get_by_role("button", name="Next").click()

    expect(current_step(page)).to_contain_text("Confirm")
    main = page.get_by_role("main")
    expect(main).to_contain_text("1 license will be created")
    expect(main).to_contain_text("From 2 vouchers")
    expect(main).to_contain_text("1 code will not be converted")
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(RESULT_URL)
    return good, typo


def check_result(page: Page, good: list[Voucher], typo: str) -> License:
    license = License.objects.get()
    assert license.quantity == 10
    expect(page.get_by_test_id("license-key")).to_have_text(license.key)
    converted = page.get_by_test_id("voucher-licenses")
    for voucher in good:
        expect(converted).to_contain_text(voucher.code)
    refused = page.get_by_test_id("voucher-refused")
    expect(refused.locator("tbody tr")).to_have_count(1)
    expect(refused).to_contain_text(typo.lower())
    expect(refused).to_contain_text("check the code for typos")
    expect(page.get_by_role("link", name="Download license file")).to_be_visible()
    for voucher in good:
        voucher.refresh_from_db()
        assert voucher.status == Voucher.Status.REDEEMED and voucher.license == license
    return license


def test_paste_three_codes_one_with_a_typo_and_convert_the_two_good_ones(
    live_server: Any, web_page: Page, tmp_path: Path, results_dir: Path
) -> None:
    page = web_page
    membership = MembershipFactory()
    log_in(page, live_server.url, membership.user.email)
    good, typo = convert_two_of_three(page, live_server.url, results_dir)
    license = check_result(page, good, typo)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download license file").click()
    download = download_info.value
    assert download.failure() is None and download.suggested_filename == license.file_name
    page.screenshot(path=str(results_dir / "voucher-center-result.png"), full_page=True)

    # Reloading the result page (or confirming again) shows the same result, nothing new.
    page.reload()
    expect(page.get_by_test_id("license-key")).to_have_text(license.key)
    assert License.objects.count() == 1


def test_phone_without_javascript_converts_vouchers(
    live_server: Any, open_context: NewContext, results_dir: Path
) -> None:
    context = open_context(viewport=PHONE, java_script_enabled=False, is_mobile=True)
    page = context.new_page()
    membership = MembershipFactory()
    log_in(page, live_server.url, membership.user.email)
    good, typo = convert_two_of_three(page, live_server.url)
    check_result(page, good, typo)
    result_url = page.url

    # Measuring the layout needs JavaScript: the same session and phone, in a second context.
    measuring = open_context(viewport=PHONE, is_mobile=True, storage_state=context.storage_state())
    phone = measuring.new_page()
    for url in (result_url, f"{live_server.url}/vouchers/"):
        open_page(phone, url)
        widths = phone.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"horizontal scrollbar on a phone at {url}: {widths}"
    open_page(phone, result_url)
    phone.screenshot(path=str(results_dir / "voucher-center-result-phone.png"), full_page=True)
