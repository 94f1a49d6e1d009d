"""Fixtures for the browser tests: real Chromium, driven by Playwright's sync API.

The portal runs in pytest-django's ``live_server`` (a thread in this process, same settings and
test database). The fixtures have their own names (``chromium_browser``, ``open_context``,
``web_page``) so that they do not clash with the ``browser``/``context``/``new_context``/``page``
fixtures of pytest-playwright, which is installed as well: those would launch a browser that
Playwright downloads, and requesting them parametrizes a test by browser name.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

# Sync Playwright keeps an asyncio loop in this thread; the ORM calls made beside it (factories,
# assertions on the database) would otherwise be refused as "async unsafe".
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Screenshots and other artifacts a person may want to look at after a run.
RESULTS_DIR = Path(__file__).resolve().parents[2] / "test-results" / "e2e"
# Long enough for a cold first request on a slow CI machine, short enough to fail fast.
TIMEOUT_MS = 15_000


# Package scope: launched once for all browser tests, and stopped after the last of them. While
# sync Playwright runs, this thread has a running asyncio loop, so every later test in the
# session would see it (Django's async-unsafe guard, asgiref's AsyncToSync refusing to run).
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip("Chromium not installed: apt-get install chromium")
    driver = sync_playwright().start()
    try:
        yield driver
    finally:
        driver.stop()


@pytest.fixture(scope="package")
def chromium_browser(playwright_driver: Playwright) -> Iterator[Browser]:
    browser = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


NewContext = Callable[..., BrowserContext]


@pytest.fixture
def open_context(chromium_browser: Browser) -> Iterator[NewContext]:
    """Opens browser contexts (desktop, English by default) and closes them after the test."""
    contexts: list[BrowserContext] = []

    def new_context(**options: Any) -> BrowserContext:
        settings: dict[str, Any] = {"viewport": DESKTOP, "locale": "en-US", **options}
        context = chromium_browser.new_context(**settings)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield new_context
    for context in contexts:
        context.close()


@pytest.fixture
def web_page(open_context: NewContext) -> Page:
    """A page in a fresh desktop context (1280x900, en-US), closed after the test."""
    return open_context().new_page()


@pytest.fixture
def results_dir() -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR
