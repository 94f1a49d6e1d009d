"""Dates as the active language writes them, for text built in Python (PDFs, messages, labels).

Templates use |date:"SHORT_DATE_FORMAT"; the formats themselves live in <lang>/formats.py.
Machine-readable output (CSV, audit details, the license file) keeps ISO dates.
"""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats


def short_date(value: date | datetime | str | None) -> str:
    """02/12/2026 in pt-BR, 2026-12-02 in English; an ISO string (JSON-stored) is read first."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return str(value)
    return str(formats.date_format(value, "SHORT_DATE_FORMAT"))
