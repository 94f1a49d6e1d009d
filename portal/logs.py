"""Logging: the request ID on every line, and no license key or code in the logs.

Logs travel further than the database (aggregators, support tickets, screenshots), so what
would let a reader use a license, redeem a serial or a voucher, or follow an invitation or share
link is masked before any handler writes it: only the last four characters remain, enough to
tell codes apart when helping a customer.

Both happen when a record is made (`install`, from PortalConfig.ready), so every handler sees the
same masked record whatever their order: the console, a test's caplog, an error tracker. The
filters below do the same for records made elsewhere and mask tracebacks, which exist only once
a handler formats them.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

from .requestcontext import request_id

_GROUPED = re.compile(
    # Keys, serials and vouchers: five groups of five; notification IDs: four groups of four.
    r"\b(?:[0-9A-Za-z]{5}-){4}[0-9A-Za-z]{5}\b|\b(?:[0-9A-Za-z]{4}-){3}[0-9A-Za-z]{4}\b"
)
# The same codes typed without dashes: 25 (or 16) letters and digits, at least one of each.
_COMPACT = re.compile(r"\b(?=[0-9A-Za-z]*\d)(?=[0-9A-Za-z]*[A-Za-z])[0-9A-Za-z]{25}\b")
# Invitation and share links carry their token in the path.
_LINK_TOKEN = re.compile(r"(/(?:invitations|licenses/shared)/)([^/\s?#\"']{8,})")


def _mask(match: re.Match[str]) -> str:
    return "…" + match.group(0)[-4:]


def mask_secrets(text: str) -> str:
    """The text with license keys, codes and link tokens reduced to their last characters."""
    text = _GROUPED.sub(_mask, text)
    text = _COMPACT.sub(_mask, text)
    return _LINK_TOKEN.sub(lambda m: m.group(1) + "…" + m.group(2)[-4:], text)


def _mask_message(record: logging.LogRecord) -> None:
    message = record.getMessage()
    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, None


class MaskSecretsFilter(logging.Filter):
    """Rewrites the record's message (and exception text) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        _mask_message(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the request's or the task's ID, "-" outside both) to the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


_installed = False


def install() -> None:
    """Stamps the request ID on, and masks secrets in, every log record when it is made."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id = request_id.get()
        # A malformed format string is left for the handler to report, as logging does.
        with contextlib.suppress(Exception):
            _mask_message(record)
        return record

    logging.setLogRecordFactory(factory)
