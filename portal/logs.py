"""Logging filters: the request ID on every line, and no license key or code in the logs.

Logs travel further than the database (aggregators, support tickets, screenshots), so what
would let a reader use a license, redeem a serial or a voucher, or follow an invitation or share
link is masked before any handler writes it: only the last four characters remain, enough to
tell codes apart when helping a customer.
"""

from __future__ import annotations

import logging
import re

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


class MaskSecretsFilter(logging.Filter):
    """Rewrites the record's message (and exception text) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (the request's or the task's ID, "-" outside both) to the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True
