"""Template filters that show stored values in the reader's language: dates and countries."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template

from portal import formats

register = template.Library()


@register.filter
def short_date(value: date | datetime | str | None) -> str:
    """A date, or an ISO date kept as text (JSON), as the active language writes it."""
    return formats.short_date(value)


@register.filter
def country_name(value: Any) -> str:
    """A country (a django-countries Country or its code) by its name in the active language.

    A value that is no country code (free text kept from before countries were codes) is shown
    as it is, never hidden.
    """
    from django_countries import countries

    code = getattr(value, "code", value) or ""
    if not code:
        return ""
    name = countries.name(str(code))
    return str(name) if name else str(code)
