"""Where release files live: Django's storage API, local disk by default or S3-compatible.

The storage alias is "fileconnect" (settings.STORAGES). Storage names are made here, from the
product, version and a random component, when a file is added; requests only ever carry a
ReleaseFile id, so nothing a client sends can name a path in the storage.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.http import content_disposition_header
from django.utils.text import get_valid_filename, slugify

from .integrity import CHUNK_SIZE

STORAGE_ALIAS = "fileconnect"


class StorageShortRead(OSError):
    """The storage returned fewer bytes than the file is recorded to hold."""


def fileconnect_storage() -> Storage:
    return storages[STORAGE_ALIAS]


def is_s3(storage: Storage) -> bool:
    # An S3Storage exists only once its module was imported: asking this way keeps boto3
    # (some 8 MB) out of web processes that serve local files.
    module = sys.modules.get("storages.backends.s3")
    return module is not None and isinstance(storage, module.S3Storage)


def is_local(storage: Storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def storage_name_for(*, sku: str, version: str, filename: str) -> str:
    """A new, unique storage name; the random part keeps re-uploads of one name apart."""
    return "/".join(
        [
            "releases",
            slugify(sku) or "product",
            slugify(version.replace(".", "-")) or "version",
            uuid.uuid4().hex,
            get_valid_filename(filename),
        ]
    )


class Delivery(StrEnum):
    STREAM = "stream"  # the portal reads the storage and streams the bytes itself
    X_ACCEL = "x_accel"  # nginx serves the local file from an internal location
    PRESIGNED = "presigned"  # the client is redirected to a short-lived S3 URL


def delivery_for(storage: Storage) -> Delivery:
    """How the bytes of a download reach the client with this storage and these settings."""
    if is_s3(storage) and settings.FILECONNECT_S3_PRESIGNED:
        return Delivery.PRESIGNED
    if is_local(storage) and settings.FILECONNECT_X_ACCEL_LOCATION:
        return Delivery.X_ACCEL
    return Delivery.STREAM


def x_accel_path(name: str) -> str:
    """The internal nginx URI of a stored file (nginx decodes it before mapping to disk)."""
    return settings.FILECONNECT_X_ACCEL_LOCATION.rstrip("/") + "/" + quote(name)


def presigned_url(storage: Storage, name: str, *, filename: str, content_type: str) -> str:
    """A short-lived GET URL for an S3 object that downloads under the file's display name."""
    parameters: dict[str, Any] = {
        "ResponseContentDisposition": content_disposition_header(True, filename),
        "ResponseContentType": content_type,
    }
    return storage.url(  # type: ignore[call-arg]
        name, parameters=parameters, expire=settings.FILECONNECT_PRESIGNED_SECONDS
    )


class RangeReader:
    """The bytes [start, start + length) of a stored file, in chunks of at most CHUNK_SIZE.

    The file is opened when the reader is made, so that a missing or unreadable file is an
    error the view can answer, before any byte of a response goes out. Iterating raises
    StorageShortRead when the storage ends early, so that a truncated transfer is never taken
    for a complete one. `close` releases the file whether or not it was read to the end.
    """

    def __init__(self, storage: Storage, name: str, *, start: int, length: int) -> None:
        self._name = name
        self._remaining = max(0, length)
        self._handle: Any = None
        self._body: Any = None
        self._chunks: Iterator[bytes] | None = None
        if self._remaining == 0:
            return
        if is_s3(storage):
            # S3File would first copy the whole object into a spooled temporary file; a ranged
            # GET streams only the requested bytes.
            obj = storage.open(name, "rb").obj  # type: ignore[attr-defined]
            self._body = obj.get(Range=f"bytes={start}-{start + length - 1}")["Body"]
            self._chunks = self._body.iter_chunks(CHUNK_SIZE)
        else:
            self._handle = storage.open(name, "rb")
            self._handle.seek(start)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._remaining == 0:
            raise StopIteration
        if self._chunks is not None:
            chunk = next(self._chunks, b"")
        else:
            chunk = self._handle.read(min(CHUNK_SIZE, self._remaining))
        if not chunk:
            raise StorageShortRead(f"{self._name}: {self._remaining} bytes missing at the end")
        chunk = chunk[: self._remaining]
        self._remaining -= len(chunk)
        return bytes(chunk)

    def close(self) -> None:
        for resource in (self._handle, self._body):
            if resource is not None:
                resource.close()
