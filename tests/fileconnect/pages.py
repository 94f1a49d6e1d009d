"""Reading FileConnect pages the way a browser would: the links they offer, and the commands
the Verify panel gives, run as a customer would run them."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.test import Client
from django.urls import reverse

from fileconnect.models import ReleaseFile
from licensing.models import License

_LINK = re.compile(r'href="(/fileconnect/files/(\d+)/download/[^"/]+/)"')


def download_links(response: Any) -> dict[int, str]:
    """File id → download URL, for every Download link on a page."""
    assert response.status_code == 200, response.status_code
    return {int(pk): url for url, pk in _LINK.findall(response.content.decode())}


def license_page(client: Client, license: License) -> Any:
    return client.get(reverse("fileconnect-license", args=[license.pk]))


def link_for(client: Client, license: License, release_file: ReleaseFile) -> str:
    return download_links(license_page(client, license))[release_file.pk]


def body(response: Any) -> bytes:
    """The whole streamed body; the test client closes the response after the last chunk."""
    return b"".join(response.streaming_content)


def first_chunk_then_hang_up(response: Any) -> bytes:
    """What a client that disconnects after the first chunk receives: the WSGI server stops
    iterating and closes the response (as the test client does, keeping the test's database
    connection open)."""
    first: bytes = next(iter(response.streaming_content))
    # The test client's own wrapper closes the response without closing the test's connection.
    response._iterator.close()
    return first


def panel_commands(page: str, file_id: int) -> list[str]:
    """The Verify panel's commands for one file, as text to paste: checksum, save the key,
    openssl, python (only the checksum when the panel has no key for the file)."""
    item = page[page.index(f'data-file-id="{file_id}"') :]
    item = item[: item.index("</li>")]
    return [html.unescape(code) for code in re.findall(r"<code>(.*?)</code>", item, re.S)]


def run_pasted(script: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Runs a pasted command in bash, with this interpreter (it has `cryptography`) as python3."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace("python3 ", f"{sys.executable} ")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
