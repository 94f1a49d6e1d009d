"""Enterprise Flexible in real Chromium: a super user draws keys down, submits the year's
deployment report and opens the true-up with its server-rendered chart; every EF page fits a
phone's width; the same drawdown works without JavaScript."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from enterprise_flex.models import EFContract, EFDeploymentReport, EFDrawdown
from tests.e2e.conftest import PHONE, NewContext
from tests.enterprise_flex.factories import EFContractFactory, EFLineFactory, contract_member
from tests.portal.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
    .slice(0, 8)
    .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def open_page(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, f"GET {url}: {response and response.status}"


def log_in(page: Page, base_url: str, email: str) -> None:
    open_page(page, f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/dashboard/")


def contract_in_report_window() -> tuple[EFContract, Any]:
    """Year 1 ends in 44 days, so its report can be submitted today."""
    contract = EFContractFactory(period_start=date.today() - timedelta(days=320))
    super_user = contract_member(contract, "super", user__full_name="Sara Super")
    site = contract.sites.get()
    site.contact_email = "plant@acme.example"
    site.save()
    EFLineFactory(
        contract=contract,
        version__product__name="Endpoint Protection",
        version__version="15.0",
        committed_quantity=100,
        unit_value=Decimal("38.00"),
        overage_allowed=True,
    )
    EFLineFactory(
        contract=contract,
        version__product__name="Web Security Gateway",
        version__version="7.2",
        committed_quantity=20,
    )
    return contract, super_user


def draw_down(page: Page, product: str, quantity: str, *, expect_overage: str = "") -> str:
    """From the contract page: Draw down → product → quantity and site → confirm; the key."""
    page.get_by_role("main").get_by_role("link", name="Draw down", exact=True).first.click()
    page.get_by_label(re.compile(product)).check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Quantity").fill(quantity)
    expect(page.get_by_label("Site")).to_have_value(re.compile(r"\d+"))
    page.get_by_role("button", name="Next").click()
    confirm = page.get_by_test_id("ef-confirm")
    expect(confirm).to_contain_text(product)
    if expect_overage:
        expect(page.get_by_test_id("ef-overage-notice")).to_contain_text(expect_overage)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Your license key")).to_be_visible()
    return page.get_by_test_id("license-key").inner_text()


def test_super_user_draws_down_reports_and_opens_the_true_up(
    live_server: Any, web_page: Page, results_dir: Path
) -> None:
    page = web_page
    contract, super_user = contract_in_report_window()
    log_in(page, live_server.url, super_user.email)

    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Enterprise Flexible"
    ).click()
    page.get_by_role("link", name=contract.number).click()
    expect(page.get_by_role("heading", name=f"Contract {contract.number}")).to_be_visible()
    expect(page.get_by_test_id("ef-summary-chart").locator("svg")).to_be_visible()

    key = draw_down(page, "Endpoint Protection", "104", expect_overage="4 units will be recorded")
    drawdown = EFDrawdown.objects.get()
    assert drawdown.license.key == key and drawdown.overage_quantity == 4
    expect(page.get_by_role("main")).to_contain_text("plant@acme.example")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download license file").click()
    assert download_info.value.suggested_filename == drawdown.license.file_name
    page.screenshot(path=str(results_dir / "ef-drawdown-result.png"), full_page=True)

    # The deployment report of year 1, prefilled with the drawdown; declare 110 and submit.
    page.get_by_role("link", name="Back to the contract").click()
    page.get_by_test_id("ef-years").get_by_role("link", name="Deployment report").first.click()
    field = page.get_by_label(re.compile(r"Endpoint Protection 15\.0 · Main site"))
    expect(field).to_have_value("104")
    field.fill("110")
    page.get_by_role("button", name="Submit report").click()
    expect(page.get_by_test_id("ef-report-status")).to_have_text("Submitted")
    report = EFDeploymentReport.objects.get()
    assert report.is_submitted and report.entries.get().quantity == 110

    page.get_by_role("link", name="True-up for this year").click()
    table = page.get_by_test_id("ef-true-up")
    row = table.locator("tr", has_text="Endpoint Protection")
    expect(row).to_contain_text("110")  # deployed, from the submitted report
    expect(page.get_by_test_id("ef-overage-total")).to_have_text("USD 380.00")  # 10 x 38.00
    chart = page.get_by_test_id("ef-true-up-chart").locator("svg")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    page.screenshot(path=str(results_dir / "ef-true-up.png"), full_page=True)
    with page.expect_download() as pdf_info:
        page.get_by_role("link", name="Export PDF").click()
    assert pdf_info.value.suggested_filename.endswith("-year-1-true-up.pdf")


def test_every_ef_page_fits_a_phone(
    live_server: Any, open_context: NewContext, results_dir: Path
) -> None:
    contract, super_user = contract_in_report_window()
    context = open_context(viewport=PHONE, is_mobile=True)
    page = context.new_page()
    log_in(page, live_server.url, super_user.email)
    open_page(page, f"{live_server.url}/enterprise-flex/{contract.number}/")
    draw_down(page, "Web Security Gateway", "3")
    base = f"{live_server.url}/enterprise-flex/{contract.number}"
    drawdown = EFDrawdown.objects.get()
    for url in (
        f"{live_server.url}/enterprise-flex/",
        f"{base}/",
        f"{base}/draw-down/",
        f"{base}/drawdowns/",
        f"{base}/drawdowns/{drawdown.pk}/",
        f"{base}/licenses/",
        f"{base}/sites/new/",
        f"{base}/users/",
        f"{base}/reports/1/",
        f"{base}/true-up/1/",
    ):
        open_page(page, url)
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        # What sticks out, to name it in the failure.
        wide = page.evaluate(WIDER_THAN_THE_SCREEN)
        assert widths[0] <= widths[1], f"horizontal scrollbar on a phone at {url}: {widths} {wide}"
    open_page(page, f"{base}/")
    page.screenshot(path=str(results_dir / "ef-contract-phone.png"), full_page=True)
    open_page(page, f"{base}/true-up/1/")
    page.screenshot(path=str(results_dir / "ef-true-up-phone.png"), full_page=True)


def test_a_drawdown_without_javascript_in_portuguese(
    live_server: Any, open_context: NewContext
) -> None:
    contract, super_user = contract_in_report_window()
    context = open_context(java_script_enabled=False, locale="pt-BR")
    page = context.new_page()
    open_page(page, f"{live_server.url}/accounts/login/")
    page.locator("input[name=login]").fill(super_user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Entrar").click()
    open_page(page, f"{live_server.url}/enterprise-flex/{contract.number}/")
    expect(page.get_by_role("heading", name=f"Contrato {contract.number}")).to_be_visible()
    page.get_by_role("main").get_by_role("link", name="Retirar chaves", exact=True).first.click()
    page.get_by_label(re.compile("Web Security Gateway")).check()
    page.get_by_role("button", name="Avançar").click()
    page.get_by_label("Quantidade").fill("21")
    page.get_by_role("button", name="Avançar").click()
    # No overage on this line: a form error in Portuguese, nothing drawn down.
    expect(page.get_by_role("main")).to_contain_text("Restam apenas 20 nesta linha")
    assert not EFDrawdown.objects.exists()
    page.get_by_label("Quantidade").fill("20")
    page.get_by_role("button", name="Avançar").click()
    page.get_by_role("button", name="Confirmar").click()
    expect(page.get_by_test_id("license-key")).to_have_text(EFDrawdown.objects.get().license.key)


# Every control in the page's main part: the primary actions (Draw down, Deployment report,
# True-up, Submit report, the exports) and the rest, in tables or not.
CONTROLS = "a.btn, button, table a, input:not([type=hidden]), select"
# The element, or an ancestor, scrolled sideways to bring it into view: out of sight before.
SCROLLED_SIDEWAYS = """e => { for (let n = e; n; n = n.parentElement) {
    if (n.scrollLeft > 0) return n.tagName + '.' + n.className } return null }"""


# The cells of the phone's cards that are shown, yet hold nothing to read or use.
BLANK_STACKED_CELLS = """() => [...document.querySelectorAll('.table-stack td, .table-stack th')]
    .filter(c => c.offsetParent !== null && !c.closest('thead'))
    .filter(c => !c.textContent.trim() && !c.querySelector('input, select, a, button, img, svg'))
    .map(c => c.outerHTML.slice(0, 120))"""


# The shown cells of a stacked table with something in them: label, height, line height.
FIGURE_CELLS = """selector => [...document.querySelectorAll(selector)]
    .filter(c => c.offsetParent !== null && c.textContent.trim())
    .map(c => [c.dataset.label, c.getBoundingClientRect().height,
               parseFloat(getComputedStyle(c).lineHeight)])"""


def test_on_a_phone_every_ef_action_is_in_reach_and_the_csp_is_kept(
    live_server: Any, open_context: NewContext, results_dir: Path
) -> None:
    # In a 390 px screen the tables scrolled inside their boxes: the contract's per-line Draw
    # down, its years' Deployment report and True-up, the report's Deployed fields were off the
    # screen's right edge, reached only by scrolling the table sideways. The charts' <style>
    # (pygal) was refused by the Content-Security-Policy, an error in the console on each page.
    contract, super_user = contract_in_report_window()
    context = open_context(viewport=PHONE, is_mobile=True)
    page = context.new_page()
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(f"{page.url}: {message.text}") if message.type == "error" else None
        ),
    )
    log_in(page, live_server.url, super_user.email)
    open_page(page, f"{live_server.url}/enterprise-flex/{contract.number}/")
    draw_down(page, "Web Security Gateway", "3")
    base = f"{live_server.url}/enterprise-flex/{contract.number}"
    drawdown = EFDrawdown.objects.get()
    pages = {
        f"{live_server.url}/enterprise-flex/": [contract.number],
        f"{base}/": ["Draw down", "Deployment report", "True-up", "Manage users"],
        f"{base}/drawdowns/": [],
        f"{base}/drawdowns/{drawdown.pk}/": ["Download license file"],
        f"{base}/licenses/": ["Export CSV"],
        f"{base}/users/": ["Change level", "Remove", "Send invitation"],
        f"{base}/reports/1/": ["Save draft", "Submit report"],
        f"{base}/true-up/1/": ["Export CSV", "Export PDF", "Deployment report for this year"],
    }
    width = PHONE["width"]
    for url, actions in pages.items():
        open_page(page, url)
        main = page.get_by_role("main")
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"horizontal scrolling at {url}: {widths}"
        for name in actions:
            # Visible ones: a stacked table's header cell of the same name is hidden on a phone.
            shown = main.get_by_text(name, exact=True).and_(page.locator(":visible"))
            expect(shown.first).to_be_visible()
        # A stacked table's header row is hidden on a phone (a "select all" box has its own
        # place there, licensing/license_list.html); its cells say their column's name.
        controls = [
            c
            for c in main.locator(CONTROLS).all()
            if c.is_visible() and not c.evaluate("e => !!e.closest('.table-stack thead')")
        ]
        assert controls, url
        # A cell with nothing to show (a year not started has no report yet) takes no room in
        # a card: it showed as an empty padded strip.
        blank = page.evaluate(BLANK_STACKED_CELLS)
        assert blank == [], f"{url}: {blank}"
        for control in controls:
            control.scroll_into_view_if_needed()
            box = control.bounding_box()
            what = control.evaluate("e => e.outerHTML.slice(0, 120)")
            assert box is not None, f"{url}: {what}"
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{url}: {box} {what}"
            sideways = control.evaluate(SCROLLED_SIDEWAYS)
            assert sideways is None, f"{url}: {what} needs scrolling {sideways} sideways"
            assert page.evaluate("() => window.scrollX") == 0, f"{url}: {what}"
    # A product's figures stand beside their labels: under them, each product's card was twelve
    # lines for six numbers, and the contract page 3,400 px long.
    for url, table in ((f"{base}/", "ef-summary"), (f"{base}/true-up/1/", "ef-true-up")):
        open_page(page, url)
        cells = page.evaluate(FIGURE_CELLS, f"[data-testid={table}] td[data-label]")
        assert cells, table
        for label, height, line in cells:
            assert height < 2 * line, f"{table} {label}: {height} px, the value under its label"
    open_page(page, f"{base}/")
    page.screenshot(path=str(results_dir / "ef-contract-phone-actions.png"), full_page=True)
    open_page(page, f"{base}/reports/1/")
    page.screenshot(path=str(results_dir / "ef-report-phone.png"), full_page=True)
    policy = [line for line in console if "Content Security Policy" in line]
    assert not policy, policy[:3]
