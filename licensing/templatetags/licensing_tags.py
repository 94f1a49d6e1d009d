from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def mask_key(key: str) -> str:
    """Every group but the last hidden: enough to recognise a key without exposing it."""
    groups = key.split("-")
    if len(groups) < 2:
        return "•" * max(0, len(key) - 4) + key[-4:]
    return "-".join(["•" * len(g) for g in groups[:-1]] + [groups[-1]])


@register.simple_tag
def sort_link(label: str, column: str, current: str, query: str) -> SafeString:
    """A column header that sorts by `column`, toggling the direction when already sorted."""
    descending = current == f"-{column}"
    active = current in (column, f"-{column}")
    target = column if descending or not active else f"-{column}"
    arrow = ("▼" if descending else "▲") if active else ""
    separator = "&" if query else ""
    aria = ' aria-sort="descending"' if descending else (' aria-sort="ascending"' if active else "")
    return format_html(
        '<a href="?{}{}sort={}" class="link-body-emphasis text-decoration-none"{}>{} {}</a>',
        query,
        separator,
        target,
        SafeString(aria),
        label,
        arrow,
    )
