"""Version upgrade in real Chromium: open the notice email's link and complete the upgrade.

A version is published, the notice email reaches the outbox, and the customer follows its link:
log in, land on the Product step with the notification shown, walk the wizard, read the new
key, download and verify the license file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from playwright.sync_api import Locator, Page, expect

from licensing.licensefile import verify_license_file
from licensing.models import License
from licensing.signing import get_public_key
from portal.models import Membership
from tests.portal.factories import PASSWORD, MembershipFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine, UpgradeNotification
from upgrades.services import version_publish

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RESULT_URL = re.compile(r"/get-a-key/result/[0-9a-f-]{36}/$")
EMAIL_LINK = re.compile(r"https?://\S+/upgrades/\?notification=[0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}")
NEW_TECHNICAL_EMAIL = "nova-tecnica@acme.example"


def open_page(page: Page, url: str) -> None:
    """Navigates and fails at once on an error page instead of timing out on a missing field."""
    response = page.goto(url)
    assert response is not None
    assert response.ok, f"GET {url} answered {response.status} {response.status_text}"


def current_step(page: Page) -> Locator:
    return page.locator('.wizard-steps [aria-current="step"]')


def next_step(page: Page) -> None:
    page.get_by_role("button", name="Next").click()


def summary_value(summary: Locator, term: str) -> Locator:
    label = summary.locator("dt", has_text=re.compile(rf"^\s*{re.escape(term)}\s*$"))
    return label.locator("xpath=following-sibling::dd[1]")


def test_notice_email_link_to_upgraded_key(
    live_server: Any,
    web_page: Page,
    tmp_path: Path,
    results_dir: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    page = web_page
    member = cast(Membership, MembershipFactory())
    old, new = catalog()
    source = cast(License, licensed(member.organization, old, quantity=10))
    mail.outbox.clear()  # the license_issued email of the source license

    with django_capture_on_commit_callbacks(execute=True):
        assert version_publish(version=new, actor=None)
    notification = UpgradeNotification.objects.get()
    line = UpgradeLine.objects.get()
    assert notification.organization == member.organization
    assert (line.source_license, line.remaining_quantity) == (source, 10)

    # The notice email, delivered after commit: its link opens the wizard.
    assert len(mail.outbox) == 1, [m.subject for m in mail.outbox]
    (notice,) = mail.outbox
    assert source.registration.technical_email in notice.to
    match = EMAIL_LINK.search(str(notice.body))
    assert match is not None, notice.body
    link = match.group(0)
    assert link.startswith("http://testserver/upgrades/?notification=")
    assert parse_qs(urlsplit(link).query)["notification"] == [notification.code]
    link = link.replace("http://testserver", live_server.url, 1)

    # Not logged in yet: the login page first, then back to the link.
    open_page(page, link)
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Email").fill(member.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(link)

    # Step 2, Product: the notification is shown, the license's line offered.
    expect(current_step(page)).to_contain_text("Product")
    main = page.get_by_role("main")
    banner = main.locator(".alert-secondary")
    expect(banner).to_contain_text(notification.code)
    expect(banner).to_contain_text("Endpoint Shield 15.0")
    choice = page.get_by_role("radio", name=re.compile(r"14\.3 → 15\.0"))
    expect(choice).to_have_count(1)
    choice.check()
    next_step(page)

    expect(current_step(page)).to_contain_text("Quantity")
    expect(main).to_contain_text(source.key)
    page.get_by_label("Quantity").fill("4")
    next_step(page)

    expect(current_step(page)).to_contain_text("Support registration")
    technical = page.get_by_label("Technical contact email")
    expect(technical).to_have_value(source.registration.technical_email)
    technical.fill(NEW_TECHNICAL_EMAIL)
    next_step(page)

    expect(current_step(page)).to_contain_text("Confirm")
    summary = main.locator("dl")
    expect(summary_value(summary, "Upgrade")).to_have_text("14.3 → 15.0")
    expect(summary_value(summary, "Quantity")).to_have_text("4")
    expect(summary_value(summary, "From license")).to_have_text(source.key)
    expect(summary_value(summary, "Technical contact")).to_contain_text(NEW_TECHNICAL_EMAIL)
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(RESULT_URL)

    # The result: the new key on screen is the upgrade license in the database.
    upgraded = License.objects.get(source=License.Source.UPGRADE)
    assert page.url.endswith(f"/get-a-key/result/{upgraded.pk}/")
    expect(page.get_by_test_id("license-key")).to_have_text(upgraded.key)
    expect(main).to_contain_text("Upgrade complete")
    assert (upgraded.version, upgraded.quantity) == (new, 4)
    assert upgraded.supersedes == source and upgraded.source_ref == notification.code
    source.refresh_from_db()
    assert (source.quantity, source.status) == (6, License.Status.ACTIVE)
    assert source.registration.technical_email == NEW_TECHNICAL_EMAIL
    line.refresh_from_db()
    assert line.remaining_quantity == 6

    download_link = page.get_by_role("link", name="Download license file")
    expect(download_link).to_be_visible()
    with page.expect_download() as download_info:
        download_link.click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == upgraded.file_name
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    payload = verify_license_file(
        saved.read_text(), license_key=upgraded.key, public_key=get_public_key()
    )
    metadata = payload["data"]["attributes"]["metadata"]
    assert metadata["quantity"] == 4

    screenshot = results_dir / "upgrade-result.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.is_file() and screenshot.stat().st_size > 0
