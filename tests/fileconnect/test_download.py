"""Serving a file: headers, HTTP Range, the download log, failures and constant memory."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tracemalloc
from datetime import date
from typing import Any

import pytest
from django.utils.http import http_date

from fileconnect.integrity import CHUNK_SIZE
from fileconnect.models import DownloadEvent, ReleaseFile
from fileconnect.services import FileConnectError, release_file_add
from tests.fileconnect.factories import add_file, license_of, member, version_of
from tests.fileconnect.pages import body, first_chunk_then_hang_up, link_for
from tests.licensing.factories import ProductFactory

pytestmark = pytest.mark.django_db

CONTENT = bytes(range(256)) * 40  # 10,240 bytes, every offset recognisable


@pytest.fixture
def world() -> dict[str, Any]:
    version = version_of(ProductFactory(sku="DL"), "1.0", date(2025, 1, 1))
    customer = member(role="member")
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    release_file = add_file(version, CONTENT, name="tool kit (x64).exe")
    return {"customer": customer, "license": license, "file": release_file, "version": version}


@pytest.fixture
def get(client, world):  # type: ignore[no-untyped-def]
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], world["file"])

    def request(method: str = "get", **headers: str) -> Any:
        return getattr(client, method)(url, headers=headers)

    return request


def test_full_download_headers_and_log(get, world) -> None:  # type: ignore[no-untyped-def]
    release_file: ReleaseFile = world["file"]
    response = get()
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["Content-Disposition"] == 'attachment; filename="tool_kit_x64.exe"'
    assert response["ETag"] == f'"{hashlib.sha256(CONTENT).hexdigest()}"'
    assert response["Last-Modified"] == http_date(release_file.created_at.timestamp())
    assert response["Accept-Ranges"] == "bytes"
    assert "private" in response["Cache-Control"]
    event = DownloadEvent.objects.get()
    assert event.status == DownloadEvent.Status.STARTED  # nothing sent yet
    assert body(response) == CONTENT
    event.refresh_from_db()
    assert (event.status, event.bytes_requested, event.bytes_sent, event.range_header) == (
        DownloadEvent.Status.COMPLETED,
        len(CONTENT),
        len(CONTENT),
        "",
    )
    assert (event.user, event.organization, event.file, event.license, event.serial) == (
        world["customer"].user,
        world["customer"].organization,
        release_file,
        world["license"],
        None,
    )
    assert event.delivery == DownloadEvent.Delivery.STREAM and event.finished_at is not None


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),  # first bytes
        ("bytes=5000-5099", 5000, 5099),  # middle
        ("bytes=-100", 10140, 10239),  # suffix
        ("bytes=10000-", 10000, 10239),  # from an offset to the end (a resumed download)
        ("bytes=10200-99999999", 10200, 10239),  # last position past the end: clipped
        ("bytes=-99999", 0, 10239),  # suffix longer than the file: all of it
        ("bytes=10239-10239", 10239, 10239),  # the last byte
        (" Bytes = 3 - 4 ", 3, 4),  # whitespace and case
    ],
)
def test_single_ranges(get, header, start, end) -> None:  # type: ignore[no-untyped-def]
    response = get(Range=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert response["Content-Length"] == str(end - start + 1)
    assert body(response) == CONTENT[start : end + 1]
    event = DownloadEvent.objects.get()
    assert (event.bytes_requested, event.bytes_sent, event.range_header) == (
        end - start + 1,
        end - start + 1,
        header,
    )


@pytest.mark.parametrize(
    "header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0", "bytes=" + "9" * 5000 + "-"]
)
def test_unsatisfiable_ranges_are_416(get, header) -> None:  # type: ignore[no-untyped-def]
    response = get(Range=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert not DownloadEvent.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-1,5-6",  # several ranges: served whole
        "bytes=0-1, -5",
        "bytes=abc",
        "bytes=",
        "bytes=-",
        "bytes=5-2",  # last before first: invalid syntax
        "bytes=--5",
        "items=0-5",
        "0-5",
        "bytes=٣-٤",  # digits, but not ASCII ones
        "bytes=0-" + "9" * 5000,
        "\x00",
    ],
)
def test_malformed_or_multiple_ranges_get_the_whole_file(get, header) -> None:  # type: ignore[no-untyped-def]
    response = get(Range=header)
    if header.endswith("9" * 5000):
        assert response.status_code == 206 and body(response) == CONTENT
        return
    assert response.status_code == 200
    assert body(response) == CONTENT


def test_if_range(get, world) -> None:  # type: ignore[no-untyped-def]
    etag = f'"{world["file"].sha256}"'
    modified = http_date(world["file"].created_at.timestamp())
    assert get(Range="bytes=0-1", **{"If-Range": etag}).status_code == 206
    assert get(Range="bytes=0-1", **{"If-Range": modified}).status_code == 206
    # The client holds another version of the file: it gets the whole current one.
    assert get(Range="bytes=0-1", **{"If-Range": '"0000"'}).status_code == 200
    assert get(Range="bytes=0-1", **{"If-Range": f"W/{etag}"}).status_code == 200
    assert get(Range="bytes=0-1", **{"If-Range": http_date(86400)}).status_code == 200
    assert get(Range="bytes=0-1", **{"If-Range": "garbage"}).status_code == 200


def test_head_answers_headers_and_logs_nothing(get) -> None:  # type: ignore[no-untyped-def]
    response = get("head")
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(CONTENT))
    assert response.content == b""
    ranged = get("head", Range="bytes=0-99")
    assert ranged.status_code == 206 and ranged["Content-Length"] == "100"
    assert not DownloadEvent.objects.exists()


def test_other_methods_are_refused(get) -> None:  # type: ignore[no-untyped-def]
    assert get("post").status_code == 405
    assert get("put").status_code == 405


def _big_file(world: dict[str, Any], size: int, tmp_path: Any) -> ReleaseFile:
    path = tmp_path / "big.bin"
    with path.open("wb") as handle:
        for _ in range(size // CHUNK_SIZE):
            handle.write(os.urandom(CHUNK_SIZE))
    with path.open("rb") as source:
        return release_file_add(
            version=world["version"],
            platform="Linux",
            source=source,
            filename="big.bin",
            actor=None,
        )


def test_client_that_hangs_up_leaves_an_interrupted_event(client, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = _big_file(world, 3 * CHUNK_SIZE, tmp_path)
    client.force_login(world["customer"].user)
    response = client.get(link_for(client, world["license"], big))
    assert len(first_chunk_then_hang_up(response)) == CHUNK_SIZE
    event = DownloadEvent.objects.get()
    assert (event.status, event.bytes_sent) == (DownloadEvent.Status.INTERRUPTED, CHUNK_SIZE)


def test_storage_failing_mid_transfer_logs_an_error_and_no_success(
    client, world, tmp_path, settings, caplog
) -> None:  # type: ignore[no-untyped-def]
    big = _big_file(world, 3 * CHUNK_SIZE, tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "fileconnect": {
            "BACKEND": "tests.fileconnect.storages.FailingStorage",
            "OPTIONS": settings.STORAGES["fileconnect"]["OPTIONS"],
        },
    }
    client.force_login(world["customer"].user)
    response = client.get(link_for(client, world["license"], big))
    assert response.status_code == 200 and response["Content-Length"] == str(big.size)
    received = b""
    with caplog.at_level(logging.ERROR, logger="fileconnect"), pytest.raises(OSError):
        for chunk in response.streaming_content:
            received += chunk
    assert len(received) == CHUNK_SIZE  # short of Content-Length: the client knows it failed
    event = DownloadEvent.objects.get()
    assert event.status == DownloadEvent.Status.FAILED
    assert event.bytes_sent == CHUNK_SIZE
    assert not DownloadEvent.objects.filter(status=DownloadEvent.Status.COMPLETED).exists()
    assert any(
        record.levelno == logging.ERROR and f"download {event.pk} failed" in record.getMessage()
        for record in caplog.records
    )


def test_memory_stays_flat_while_streaming_a_large_file(client, world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = _big_file(world, 48 * CHUNK_SIZE, tmp_path)
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], big)
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        response = client.get(url, headers={"Range": "bytes=1-"})
        for chunk in response.streaming_content:
            digest.update(chunk)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * CHUNK_SIZE, f"peak {peak} bytes for a {big.size}-byte file"
    with (tmp_path / "big.bin").open("rb") as handle:
        handle.seek(1)
        assert digest.hexdigest() == hashlib.file_digest(handle, "sha256").hexdigest()


def test_behind_nginx_the_portal_hands_over_with_x_accel_redirect(get, world, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FILECONNECT_X_ACCEL_LOCATION = "/_fileconnect/"
    response = get(Range="bytes=0-99")
    assert response.status_code == 200
    name = world["file"].storage_name
    assert response["X-Accel-Redirect"] == "/_fileconnect/" + name.replace(" ", "%20")
    assert name.startswith("releases/dl/1-0/") and name.endswith("/tool_kit_x64.exe")
    assert response.content == b""
    assert response["Content-Disposition"] == 'attachment; filename="tool_kit_x64.exe"'
    event = DownloadEvent.objects.get()
    assert (event.status, event.delivery, event.bytes_requested) == (
        DownloadEvent.Status.HANDED_OFF,
        DownloadEvent.Delivery.X_ACCEL,
        100,
    )
    # Ranges nginx could not satisfy are refused here already, with the same 416.
    assert get(Range="bytes=99999-").status_code == 416


def test_file_names_cannot_steer_the_storage_path(world) -> None:  # type: ignore[no-untyped-def]
    added = add_file(world["version"], b"x", name="../../etc/passwd")
    assert added.display_name == "passwd"
    assert added.storage_name.startswith("releases/dl/1-0/")
    assert ".." not in added.storage_name
    tricky = release_file_add(
        version=world["version"],
        platform="Win",
        source=io.BytesIO(b"y"),
        filename="C:\\Users\\x\\setup; rm -rf.exe",
        actor=None,
    )
    assert tricky.display_name == "setup_rm_-rf.exe"


def test_a_file_missing_from_storage_is_a_clear_503(
    client, world, fileconnect_root, caplog
) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], world["file"])
    (fileconnect_root / world["file"].storage_name).unlink()
    with caplog.at_level(logging.ERROR, logger="fileconnect"):
        response = client.get(url)
    assert response.status_code == 503
    assert "cannot be downloaded right now" in response.content.decode()
    event = DownloadEvent.objects.get()
    assert (event.status, event.bytes_sent) == (DownloadEvent.Status.FAILED, 0)
    assert any("cannot open" in record.getMessage() for record in caplog.records)


def test_a_head_asks_the_storage_as_the_get_does(client, world, fileconnect_root, caplog) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], world["file"])
    head = client.head(url)
    assert head.status_code == 200
    assert head["Content-Length"] == str(world["file"].size)
    (fileconnect_root / world["file"].storage_name).unlink()
    with caplog.at_level(logging.ERROR, logger="fileconnect"):
        head = client.head(url)
    # The GET's answer: a 200 with the file's length would say the link works.
    assert head.status_code == 503 == client.get(url).status_code
    assert "Content-Disposition" not in head
    assert any("cannot open" in record.getMessage() for record in caplog.records)
    # A HEAD is no download: only the GET is recorded.
    assert DownloadEvent.objects.count() == 1


def test_a_storage_that_keeps_part_of_a_file_is_caught(world, settings, fileconnect_root) -> None:  # type: ignore[no-untyped-def]
    settings.STORAGES = {
        **settings.STORAGES,
        "fileconnect": {
            "BACKEND": "tests.fileconnect.storages.TruncatingStorage",
            "OPTIONS": {"location": fileconnect_root},
        },
    }
    with pytest.raises(FileConnectError, match="did not take the whole file"):
        add_file(world["version"], CONTENT, name="cut.bin")
    assert not ReleaseFile.objects.filter(display_name="cut.bin").exists()
    assert not list(fileconnect_root.rglob("cut.bin"))  # the partial copy is removed
