"""FileConnect in real Chromium: enter a serial number, see the entitled list, download a file and
check that its SHA-256 is the one the page shows; the pages fit a phone, in both languages."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import date
from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Page, expect

from fileconnect.models import DownloadEvent, ReleaseFile
from fileconnect.services import release_file_add
from licensing.models import ProductVersion, SerialNumber
from portal.models import Membership
from tests.e2e.conftest import PHONE, NewContext
from tests.licensing.factories import ProductFactory, ProductVersionFactory, SerialNumberFactory
from tests.portal.factories import PASSWORD, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def catalog(settings, tmp_path: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    settings.STORAGES = {
        **settings.STORAGES,
        "fileconnect": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "fileconnect"},
        },
    }
    settings.FILECONNECT_X_ACCEL_LOCATION = ""
    product = ProductFactory(name="Endpoint Protection", sku="SEP-ENT")
    v14 = cast(
        ProductVersion,
        ProductVersionFactory(product=product, version="14.3", released_on=date(2025, 3, 1)),
    )
    v15 = cast(
        ProductVersion,
        ProductVersionFactory(product=product, version="15.0", released_on=date(2026, 3, 1)),
    )
    installer = os.urandom(2 * 1024 * 1024 + 17)
    files = {
        "windows": _add(v14, "Windows x64", "sep-ent-14.3-win-x64.exe", installer),
        "linux": _add(v14, "Linux x86_64", "sep-ent-14.3-linux-x86_64.tar.gz", os.urandom(4096)),
        "later": _add(v15, "Windows x64", "sep-ent-15.0-win-x64.exe", os.urandom(4096)),
    }
    serial = cast(SerialNumber, SerialNumberFactory(version=v14))
    return {"files": files, "serial": serial, "installer": installer}


def _add(version: ProductVersion, platform: str, name: str, content: bytes) -> ReleaseFile:
    return release_file_add(
        version=version,
        platform=platform,
        source=io.BytesIO(content),
        filename=name,
        actor=None,
        notes=f"{version.version}: general availability",
    )


def log_in(page: Page, base_url: str, email: str, button: str = "Log in") -> None:
    response = page.goto(f"{base_url}/accounts/login/")
    assert response is not None and response.ok
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name=button).click()
    expect(page).to_have_url(f"{base_url}/dashboard/")


def enter_serial(page: Page, code: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name="FileConnect").click()
    expect(page.get_by_role("heading", name="FileConnect", level=1)).to_be_visible()
    page.get_by_role("textbox", name="Serial number").fill(code)
    page.get_by_role("button", name="Show downloads").click()


def test_enter_a_serial_download_and_check_the_sha256(
    live_server: Any, web_page: Page, catalog: dict[str, Any], tmp_path: Path, results_dir: Path
) -> None:
    page = web_page
    membership = cast(Membership, MembershipFactory(role="member"))
    log_in(page, live_server.url, membership.user.email)
    enter_serial(page, catalog["serial"].code)

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Downloads for Endpoint Protection 14.3"
    )
    windows = catalog["files"]["windows"]
    item = page.locator(f'[data-file-id="{windows.pk}"]')
    expect(item).to_contain_text("sep-ent-14.3-win-x64.exe")
    expect(page.locator(f'[data-file-id="{catalog["files"]["linux"].pk}"]')).to_be_visible()
    # 15.0 is listed, greyed out, without a link: a serial number covers its own version.
    later = page.locator('section[data-entitled="false"]')
    expect(later).to_contain_text("Version 15.0")
    expect(later).to_contain_text("sep-ent-15.0-win-x64.exe")
    expect(later.get_by_role("link", name="Download")).to_have_count(0)

    shown_sha256 = item.get_by_test_id("sha256").inner_text().strip()
    item.locator("summary", has_text="Verify your download").click()
    expect(item.get_by_text("openssl pkeyutl -verify")).to_be_visible()
    page.screenshot(path=str(results_dir / "fileconnect-downloads.png"), full_page=True)

    with page.expect_download() as download_info:
        item.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == "sep-ent-14.3-win-x64.exe"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with saved.open("rb") as handle:
        actual = hashlib.file_digest(handle, "sha256").hexdigest()
    assert actual == shown_sha256 == windows.sha256
    assert saved.read_bytes() == catalog["installer"]

    event = DownloadEvent.objects.get()
    assert (event.user, event.serial, event.status, event.bytes_sent) == (
        membership.user,
        catalog["serial"],
        DownloadEvent.Status.COMPLETED,
        len(catalog["installer"]),
    )
    screenshot = results_dir / "fileconnect-downloads.png"
    assert screenshot.is_file() and screenshot.stat().st_size > 0


@pytest.mark.parametrize("locale", ["en-US", "pt-BR"])
def test_fileconnect_pages_fit_a_phone(
    live_server: Any,
    open_context: NewContext,
    catalog: dict[str, Any],
    results_dir: Path,
    locale: str,
) -> None:
    context = open_context(viewport=PHONE, is_mobile=True, locale=locale)
    page = context.new_page()
    admin = cast(Membership, MembershipFactory(role="admin"))
    log_in(page, live_server.url, admin.user.email, "Log in" if locale == "en-US" else "Entrar")
    response = page.goto(f"{live_server.url}/fileconnect/")
    assert response is not None and response.ok
    page.locator("input[name=serial]").fill(catalog["serial"].code)
    page.locator("form button[type=submit]").last.click()
    expect(page.locator("[data-testid=sha256]").first).to_be_visible()
    with page.expect_download() as download_info:  # so that the log has a row to show
        page.locator("[data-file-id] a.btn").first.click()
    assert download_info.value.failure() is None
    for summary in page.locator("summary").all():
        summary.click()  # the verify panels, open, must fit too
    pages = {"downloads": page.url, "home": f"{live_server.url}/fileconnect/"}
    pages["log"] = f"{live_server.url}/fileconnect/log/"
    for name, url in pages.items():
        if name != "downloads":
            response = page.goto(url)
            assert response is not None and response.ok, url
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"{name} ({locale}) overflows a phone: {widths}"
        page.screenshot(
            path=str(results_dir / f"fileconnect-{name}-phone-{locale}.png"), full_page=True
        )
    if locale == "pt-BR":
        page.goto(pages["downloads"])
        expect(page.get_by_role("link", name="Baixar").first).to_be_visible()


def test_the_download_log_is_a_list_of_cards_on_a_phone(
    live_server: Any, open_context: NewContext, catalog: dict[str, Any], results_dir: Path
) -> None:
    """Six columns were 891 px wide in a 364 px scroller and the File column wrapped every few
    characters: on a phone each download is a card, its values under their labels."""
    admin = cast(Membership, MembershipFactory(role="admin"))
    for release_file in catalog["files"].values():
        DownloadEvent.objects.create(
            user=admin.user,
            organization=admin.organization,
            file=release_file,
            serial=catalog["serial"],
            bytes_requested=release_file.size,
            delivery=DownloadEvent.Delivery.STREAM,
            status=DownloadEvent.Status.COMPLETED,
        )
    page = open_context(viewport=PHONE, is_mobile=True).new_page()
    log_in(page, live_server.url, admin.user.email)
    response = page.goto(f"{live_server.url}/fileconnect/log/")
    assert response is not None and response.ok
    table = page.get_by_test_id("download-log")
    expect(table.locator("tbody tr")).to_have_count(3)
    assert page.evaluate(
        "(t) => t.scrollWidth <= t.parentElement.clientWidth", table.element_handle()
    ), "the log scrolls sideways on a phone"
    expect(table.locator("thead")).not_to_be_in_viewport()
    file_cell = table.locator("tbody tr").first.locator('td[data-label="File"]')
    expect(file_cell).to_contain_text("sep-ent-")
    box, card = file_cell.bounding_box(), table.locator("tbody tr").first.bounding_box()
    assert box is not None and card is not None and box["width"] >= card["width"] - 2
    page.screenshot(path=str(results_dir / "fileconnect-log-phone.png"), full_page=True)
