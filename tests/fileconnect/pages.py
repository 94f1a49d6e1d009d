"""Reading FileConnect pages the way a browser would: the links they offer."""

from __future__ import annotations

import re
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
