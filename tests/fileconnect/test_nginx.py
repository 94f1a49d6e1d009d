"""The full-stack download path through a real nginx: the portal checks and logs, then hands
the bytes to nginx with X-Accel-Redirect; nginx serves them with Range, ETag and Last-Modified."""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest

from fileconnect.models import DownloadEvent
from tests.fileconnect.factories import add_file, license_of, member, version_of
from tests.fileconnect.nginx import X_ACCEL_LOCATION, nginx_binary, running_nginx
from tests.licensing.factories import ProductFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(nginx_binary() is None, reason="nginx not installed: apt-get install nginx"),
]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx comes back as an HTTPError, to be looked at


_OPENER = urllib.request.build_opener(_NoRedirects)


class Browser:
    """A minimal HTTP client with the test user's session cookie; it does not follow redirects."""

    def __init__(self, base: str, session: str) -> None:
        self.base = base
        self.session = session

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(  # noqa: S310 - the test's own nginx
            self.base + path, headers={"Cookie": f"sessionid={self.session}", **headers}
        )
        try:
            with _OPENER.open(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()


@pytest.fixture
def stack(client, live_server, settings, fileconnect_root, tmp_path) -> Any:  # type: ignore[no-untyped-def]
    settings.FILECONNECT_X_ACCEL_LOCATION = X_ACCEL_LOCATION
    version = version_of(ProductFactory(sku="NGX"), "5.0", date(2025, 1, 1))
    customer = member()
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    content = os.urandom(8 * 1024 * 1024 + 123)
    release_file = add_file(version, content, platform="Linux", name="ngx-5.0.bin")
    client.force_login(customer.user)
    upstream = urlsplit(live_server.url).netloc
    with running_nginx(upstream=upstream, root=fileconnect_root, workdir=tmp_path / "nginx") as url:
        browser = Browser(url, client.cookies["sessionid"].value)
        yield {"browser": browser, "license": license, "file": release_file, "content": content}


def _download_link(stack: Any) -> str:
    status, _headers, page = stack["browser"].get(f"/fileconnect/licenses/{stack['license'].pk}/")
    assert status == 200
    (link,) = re.findall(r'href="(/fileconnect/files/\d+/download/[^"]+/)"', page.decode())
    return link


def test_nginx_serves_the_file_after_the_portal_checked_it(stack) -> None:  # type: ignore[no-untyped-def]
    browser, content = stack["browser"], stack["content"]
    link = _download_link(stack)
    status, headers, data = browser.get(link)
    assert status == 200
    assert hashlib.sha256(data).hexdigest() == stack["file"].sha256
    assert headers["Content-Length"] == str(len(content))
    assert headers["Content-Disposition"] == 'attachment; filename="ngx-5.0.bin"'
    assert headers["ETag"] and headers["Last-Modified"]
    assert headers["Accept-Ranges"] == "bytes"
    assert "X-Accel-Redirect" not in headers  # nginx consumed it
    event = DownloadEvent.objects.get()
    assert (event.delivery, event.status, event.bytes_requested) == (
        DownloadEvent.Delivery.X_ACCEL,
        DownloadEvent.Status.HANDED_OFF,
        len(content),
    )


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=4000000-4000999", 4000000, 4000999),
        ("bytes=-500", None, None),
    ],
)
def test_nginx_answers_ranges(stack, header, start, end) -> None:  # type: ignore[no-untyped-def]
    content = stack["content"]
    if start is None:
        start, end = len(content) - 500, len(content) - 1
    status, headers, data = stack["browser"].get(_download_link(stack), Range=header)
    assert status == 206
    assert headers["Content-Range"] == f"bytes {start}-{end}/{len(content)}"
    assert data == content[start : end + 1]
    assert DownloadEvent.objects.get().bytes_requested == end - start + 1


def test_bad_ranges_through_nginx(stack) -> None:  # type: ignore[no-untyped-def]
    browser, content = stack["browser"], stack["content"]
    link = _download_link(stack)
    status, headers, _data = browser.get(link, Range=f"bytes={len(content)}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(content)}"
    status, _headers, data = browser.get(link, Range="bytes=0-1,5-6")
    assert status == 200 and data == content  # one range or the whole file
    # nginx refuses a malformed bytes range with 416 where the portal's own path sends the whole
    # file: RFC 9110 allows both, and neither is a 500.
    status, _headers, data = browser.get(link, Range="bytes=nonsense")
    assert status == 416 and data != content
    status, _headers, data = browser.get(link, Range="items=0-5")
    assert status == 200 and data == content


def test_internal_location_is_not_reachable_from_outside(stack) -> None:  # type: ignore[no-untyped-def]
    browser = stack["browser"]
    status, _headers, data = browser.get(X_ACCEL_LOCATION + stack["file"].storage_name)
    assert status == 404 and stack["content"][:100] not in data
    status, _headers, _data = browser.get(X_ACCEL_LOCATION + "../../etc/passwd")
    assert status in (400, 404)


def test_refused_links_through_nginx(stack) -> None:  # type: ignore[no-untyped-def]
    browser = stack["browser"]
    link = _download_link(stack)
    status, _headers, page = browser.get(link[:-6] + "XXXXX/")
    assert status == 403 and b"Get a new link" in page
    other = Browser(browser.base, "no-such-session")
    status, headers, _data = other.get(link)
    assert status == 302 and "/accounts/login/" in headers["Location"]
    assert not DownloadEvent.objects.exists()
