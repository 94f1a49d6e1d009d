"""Template filters that show stored values in the reader's language: dates and countries."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

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


@register.filter
def wrap_at_dashes(value: str) -> SafeString:
    """A license key or code that may break onto the next line after each dash, never inside a
    group: the browser would otherwise cut a long key at the screen's edge or mid-group (no
    break is allowed between a hyphen and a digit)."""
    return mark_safe("-<wbr>".join(escape(part) for part in str(value).split("-")))
