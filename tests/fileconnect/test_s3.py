"""The S3 path against moto's standalone S3 server, started here on a free port: files are
streamed into the bucket, downloads redirect to presigned URLs or stream ranged GETs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.urls import reverse

from fileconnect.integrity import CHUNK_SIZE
from fileconnect.models import DownloadEvent
from fileconnect.services import release_file_add, release_withdraw
from tests.fileconnect.factories import license_of, member, version_of
from tests.fileconnect.pages import body, link_for
from tests.fileconnect.servers import free_port, stop, wait_for_port
from tests.licensing.factories import ProductFactory

pytestmark = pytest.mark.django_db

CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    moto_server = Path(sys.executable).parent / "moto_server"
    if not moto_server.exists():
        pytest.skip("moto[server] is not installed: pip install -e '.[dev]'")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture
def bucket(settings, s3_endpoint: str) -> str:  # type: ignore[no-untyped-def]
    name = f"fileconnect-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "fileconnect": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "location": "installers",
                "file_overwrite": False,
                "signature_version": "s3v4",
                **CREDENTIALS,
            },
        },
    }
    settings.FILECONNECT_S3_PRESIGNED = True
    return name


def _s3(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def world(bucket: str) -> dict[str, Any]:
    version = version_of(ProductFactory(sku="S3P"), "1.0", date(2025, 1, 1))
    customer = member()
    license = license_of(customer, version, start=date(2025, 1, 1), end=date(2026, 1, 1))
    return {"version": version, "customer": customer, "license": license, "bucket": bucket}


def _fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - the test's own server
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, dict(response.headers), response.read()


def test_add_file_streams_into_the_bucket(world, s3_endpoint, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "big.iso"
    with path.open("wb") as handle:
        for _ in range(20):  # past boto3's 8 MiB multipart threshold
            handle.write(os.urandom(CHUNK_SIZE))
    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "releases", "add-file", "--product", "S3P", "--version", "1.0", "--platform", "Linux",
        str(path), stdout=out,
    )  # fmt: skip
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"sha256: {expected}" in out.getvalue()
    added = world["version"].releases.get().files.get()
    assert added.size == 20 * CHUNK_SIZE and added.sha256 == expected
    stored = _s3(s3_endpoint).get_object(
        Bucket=world["bucket"], Key=f"installers/{added.storage_name}"
    )
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == expected


def test_download_redirects_to_a_presigned_url_that_serves_ranges(client, world) -> None:  # type: ignore[no-untyped-def]
    content = os.urandom(100_000)
    added = release_file_add(
        version=world["version"],
        platform="Linux",
        source=io.BytesIO(content),
        filename="tool.tar.gz",
        actor=None,
    )
    client.force_login(world["customer"].user)
    response = client.get(link_for(client, world["license"], added))
    assert response.status_code == 302
    location = response["Location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    status, headers, data = _fetch(location)
    assert status == 200 and data == content
    assert headers["Content-Disposition"] == 'attachment; filename="tool.tar.gz"'
    status, headers, data = _fetch(location, Range="bytes=-10")
    assert status == 206 and data == content[-10:]
    event = DownloadEvent.objects.get()
    assert (event.delivery, event.status, event.bytes_requested) == (
        DownloadEvent.Delivery.PRESIGNED,
        DownloadEvent.Status.HANDED_OFF,
        len(content),
    )


def test_portal_can_stream_from_the_bucket_itself(client, world, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FILECONNECT_S3_PRESIGNED = False
    content = os.urandom(3 * CHUNK_SIZE + 7)
    added = release_file_add(
        version=world["version"],
        platform="Linux",
        source=io.BytesIO(content),
        filename="tool.bin",
        actor=None,
    )
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], added)
    response = client.get(url, headers={"Range": f"bytes={CHUNK_SIZE - 3}-"})
    assert response.status_code == 206
    assert body(response) == content[CHUNK_SIZE - 3 :]
    assert body(client.get(url)) == content
    assert list(DownloadEvent.objects.values_list("status", flat=True)) == ["completed"] * 2


def test_a_head_asks_the_bucket_as_the_get_does(client, world, settings, s3_endpoint) -> None:  # type: ignore[no-untyped-def]
    settings.FILECONNECT_S3_PRESIGNED = False
    added = release_file_add(
        version=world["version"],
        platform="Linux",
        source=io.BytesIO(b"installer"),
        filename="tool.bin",
        actor=None,
    )
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], added)
    head = client.head(url)
    assert head.status_code == 200 and head["Content-Length"] == "9"
    _s3(s3_endpoint).delete_object(Bucket=world["bucket"], Key=f"installers/{added.storage_name}")
    assert client.head(url).status_code == 503 == client.get(url).status_code


def test_withdrawn_release_is_not_served_from_the_bucket(client, world) -> None:  # type: ignore[no-untyped-def]
    added = release_file_add(
        version=world["version"],
        platform="Linux",
        source=io.BytesIO(b"x"),
        filename="x.bin",
        actor=None,
    )
    client.force_login(world["customer"].user)
    url = link_for(client, world["license"], added)
    release_withdraw(release=added.release, actor=None)
    assert client.get(url).status_code == 410  # the withdrawn page, not a redirect to the bucket
    assert client.get(reverse("fileconnect-license", args=[world["license"].pk])).status_code == 200


def test_environment_variables_configure_the_bucket(tmp_path) -> None:
    """The variables the README documents select S3Storage with these options."""
    env = {
        **os.environ,
        "FILECONNECT_S3_BUCKET": "installers",
        "FILECONNECT_S3_ENDPOINT_URL": "http://minio:9000",
        "FILECONNECT_S3_REGION": "eu-west-1",
        "FILECONNECT_S3_PREFIX": "portal",
        "FILECONNECT_S3_ADDRESSING_STYLE": "path",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_VAR_DIR": str(tmp_path),
    }
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "from fileconnect.storage import fileconnect_storage as s; st = s(); "
        "print(json.dumps([settings.STORAGES['fileconnect']['BACKEND'], st.bucket_name, "
        "st.endpoint_url, st.region_name, st.location, st.addressing_style]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == [
        "storages.backends.s3.S3Storage",
        "installers",
        "http://minio:9000",
        "eu-west-1",
        "portal",
        "path",
    ]
