"""The response to an entitled download: streamed by the portal, or handed to nginx or S3.

Memory stays constant whatever the file size: the portal's own path streams fixed-size chunks,
and the other two never read the file at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.core.files.storage import Storage
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.http import content_disposition_header, http_date

from portal.models import Organization, User

from .models import DownloadEvent, ReleaseFile
from .ranges import ByteRange, RangeNotSatisfiable, if_range_allows, parse_range
from .selectors import Basis
from .services import download_event_finish, download_event_start
from .storage import (
    Delivery,
    RangeReader,
    delivery_for,
    fileconnect_storage,
    presigned_url,
    x_accel_path,
)

logger = logging.getLogger(__name__)


class Transfer:
    """The body of a streamed download; records on its DownloadEvent how the transfer ended.

    The event says "completed" only once the last byte was handed to the server. A storage
    error logs an error and marks it "failed"; a client that goes away leaves it "interrupted".
    """

    def __init__(self, *, chunks: RangeReader, event_id: int, expected: int) -> None:
        self._chunks = chunks
        self._event_id = event_id
        self._expected = expected
        self._finished = False
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                self.sent += len(chunk)
                yield chunk
        except Exception:
            logger.exception(
                "FileConnect download %s failed after %s of %s bytes: storage error",
                self._event_id,
                self.sent,
                self._expected,
            )
            self._finish(DownloadEvent.Status.FAILED)
            raise  # the server drops the connection: the client sees a short body, not a file
        self._finish(DownloadEvent.Status.COMPLETED)

    def close(self) -> None:
        """Called by the WSGI server when the response ends, finished or not."""
        if not self._finished:
            self._finish(DownloadEvent.Status.INTERRUPTED)
        self._chunks.close()

    def _finish(self, status: str) -> None:
        self._finished = True
        download_event_finish(event_id=self._event_id, status=status, bytes_sent=self.sent)


def _requested_range(request: HttpRequest, file: ReleaseFile, etag: str) -> ByteRange | None:
    if not if_range_allows(
        request.headers.get("If-Range"), etag=etag, last_modified=file.last_modified
    ):
        return None
    return parse_range(request.headers.get("Range"), file.size)


def _headers(response: HttpResponseBase, file: ReleaseFile, etag: str) -> None:
    response["Content-Disposition"] = content_disposition_header(True, file.display_name) or ""
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    response["Last-Modified"] = http_date(file.last_modified.timestamp())
    # Private: the URL is a personal, short-lived link; caches must not share it.
    response["Cache-Control"] = "private, max-age=0, no-transform"


def download_response(
    request: HttpRequest,
    *,
    actor: User,
    organization: Organization,
    file: ReleaseFile,
    basis: Basis,
) -> HttpResponseBase:
    """Serves (or hands off) an entitled file, honouring one Range; logs the download."""
    etag = f'"{file.sha256}"'
    try:
        byte_range = _requested_range(request, file, etag)
    except RangeNotSatisfiable:
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{file.size}"
        _headers(refused, file, etag)
        return refused
    length = byte_range.length if byte_range is not None else file.size
    storage = fileconnect_storage()
    if request.method == "HEAD":  # the headers a download manager asks for; not a download
        return _head(request, storage, file, etag, byte_range, length)
    delivery = delivery_for(storage)
    event = download_event_start(
        actor=actor,
        organization=organization,
        file=file,
        basis=basis,
        range_header=request.headers.get("Range", ""),
        bytes_requested=length,
        delivery=delivery,
    )
    if delivery == Delivery.PRESIGNED:
        return _presigned(storage, file)
    if delivery == Delivery.X_ACCEL:
        return _x_accel(file, etag)
    return _stream(request, storage, file, etag, byte_range, event)


def _head(
    request: HttpRequest,
    storage: Storage,
    file: ReleaseFile,
    etag: str,
    byte_range: ByteRange | None,
    length: int,
) -> HttpResponseBase:
    """The headers of the download, or the page a GET would get when the storage cannot give
    the file: a 200 with a Content-Length for a file that is gone would tell a download manager
    or a link checker the link works. Opened and closed without reading a byte (on S3, opening
    to read asks for the object's metadata: one HEAD request)."""
    try:
        storage.open(file.storage_name, "rb").close()
    except Exception:
        logger.exception("FileConnect HEAD: cannot open %s", file.storage_name)
        return _unavailable(request, file)
    response = HttpResponse(content_type=file.content_type)
    response["Content-Length"] = str(length)
    _range_headers(response, byte_range, file)
    _headers(response, file, etag)
    return response


def _unavailable(request: HttpRequest, file: ReleaseFile) -> HttpResponseBase:
    return render(request, "fileconnect/unavailable.html", {"file": file}, status=503)


def _presigned(storage: Storage, file: ReleaseFile) -> HttpResponseBase:
    # S3 answers Range, ETag and Last-Modified itself.
    response = HttpResponseRedirect(
        presigned_url(
            storage, file.storage_name, filename=file.display_name, content_type=file.content_type
        )
    )
    response["Cache-Control"] = "no-store"
    return response


def _x_accel(file: ReleaseFile, etag: str) -> HttpResponseBase:
    # nginx serves the bytes (and the Range, ETag and Last-Modified of the file on disk); it
    # keeps Content-Type and Content-Disposition from this response.
    response = HttpResponse(content_type=file.content_type)
    response["X-Accel-Redirect"] = x_accel_path(file.storage_name)
    _headers(response, file, etag)
    del response["ETag"]
    del response["Last-Modified"]
    return response


def _stream(
    request: HttpRequest,
    storage: Storage,
    file: ReleaseFile,
    etag: str,
    byte_range: ByteRange | None,
    event: DownloadEvent,
) -> HttpResponseBase:
    start, length = (byte_range.start, byte_range.length) if byte_range else (0, file.size)
    try:
        chunks = RangeReader(storage, file.storage_name, start=start, length=length)
    except Exception:
        # The record says the file exists and the storage cannot give it: a fault on our side,
        # answered with a page that says so, logged, and no download claimed.
        logger.exception("FileConnect download %s: cannot open %s", event.pk, file.storage_name)
        download_event_finish(event_id=event.pk, status=DownloadEvent.Status.FAILED, bytes_sent=0)
        return _unavailable(request, file)
    transfer = Transfer(chunks=chunks, event_id=event.pk, expected=length)
    response = StreamingHttpResponse(transfer, content_type=file.content_type)
    response["Content-Length"] = str(length)
    _range_headers(response, byte_range, file)
    _headers(response, file, etag)
    return response


def _range_headers(
    response: HttpResponseBase, byte_range: ByteRange | None, file: ReleaseFile
) -> None:
    if byte_range is not None:
        response.status_code = 206
        response["Content-Range"] = byte_range.content_range(file.size)
