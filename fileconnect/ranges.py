"""HTTP Range requests (RFC 9110 §14) for one representation of a known size.

Only what resuming a download needs: one byte range, `first-last`, `first-` or a suffix `-n`.
A header that is malformed, uses another unit or asks for several ranges is ignored, which the
RFC allows, and the whole file is served; a well-formed range that starts past the end is
unsatisfiable (416).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.utils.http import parse_http_date_safe

_RANGE = re.compile(r"^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$", re.IGNORECASE)
# Positions beyond any real file; longer digit strings are not parsed (int() refuses > 4300
# digits, and a 10**4000 offset means the same as this one).
_HUGE = 10**18


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int

    @property
    def end(self) -> int:
        """The last byte position, inclusive, as Content-Range writes it."""
        return self.start + self.length - 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class RangeNotSatisfiable(ValueError):
    """A well-formed range that selects no byte of the file."""


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _HUGE


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve, or None for the whole file; RangeNotSatisfiable for a 416."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:  # another unit, several ranges, or not a range at all
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        length = min(suffix, size)
        return ByteRange(start=size - length, length=length)
    start = _number(first)
    if last and _number(last) < start:
        return None  # `5-2` is invalid syntax, not an empty range
    if start >= size:
        raise RangeNotSatisfiable(header)
    end = min(_number(last), size - 1) if last else size - 1
    return ByteRange(start=start, length=end - start + 1)


def if_range_allows(header: str | None, *, etag: str, last_modified: datetime) -> bool:
    """Whether a Range may be honoured given If-Range: the client's copy is still current."""
    if not header:
        return True
    header = header.strip()
    if header.startswith(('"', "W/")):
        # Only a strong, identical validator lets bytes be combined with an older copy.
        return header == etag
    timestamp = parse_http_date_safe(header)
    return timestamp is not None and timestamp == int(last_modified.timestamp())
