from __future__ import annotations

import html
from collections.abc import Callable
from datetime import date
from typing import Any

from django import template
from django.core.exceptions import FieldDoesNotExist
from django.urls import reverse
from django.utils.formats import date_format, get_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import License, LicenseShare, SupportRegistration

register = template.Library()


@register.filter
def mask_key(key: str) -> str:
    """Every group but the last hidden: enough to recognise a key without exposing it."""
    groups = key.split("-")
    if len(groups) < 2:
        return "•" * max(0, len(key) - 4) + key[-4:]
    return "-".join(["•" * len(g) for g in groups[:-1]] + [groups[-1]])


@register.filter
def registration_field_label(name: str) -> str:
    """A support registration field, as an audit event names it, by its label in the reader's
    language ("technical_email" → "technical contact email")."""
    try:
        field = SupportRegistration._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    return str(getattr(field, "verbose_name", name))


@register.filter
def share_access_label(value: str) -> str:
    """A share's access, as an audit event keeps it ("manage"), by its label."""
    try:
        return str(LicenseShare.Access(value).label)
    except ValueError:
        return value


def _sort_direction(column: str, current: str) -> str:
    """ "ascending" or "descending" when the list is sorted by `column`, else ""."""
    if current == f"-{column}":
        return "descending"
    return "ascending" if current == column else ""


@register.simple_tag
def sort_link(label: str, column: str, current: str, query: str) -> SafeString:
    """A link that sorts by `column`, toggling the direction when already sorted. The sorted
    one says so in words; its arrow is hidden from screen readers, which read it as a glyph's
    name. The header cell around it carries aria-sort (sort_header)."""
    direction = _sort_direction(column, current)
    target = f"-{column}" if direction == "ascending" else column
    state = SafeString("")
    if direction:
        state = format_html(
            ' <span aria-hidden="true">{}</span><span class="visually-hidden"> ({})</span>',
            "▼" if direction == "descending" else "▲",
            gettext("sorted descending")
            if direction == "descending"
            else gettext("sorted ascending"),
        )
    return format_html(
        '<a href="?{}{}sort={}" class="link-body-emphasis text-decoration-none{}">{}{}</a>',
        query,
        "&" if query else "",
        target,
        " sorted" if direction else "",
        label,
        state,
    )


@register.simple_tag
def sort_header(label: str, column: str, current: str, query: str, css: str = "") -> SafeString:
    """A column's header cell with its sort_link, and aria-sort on the cell when the list is
    sorted by that column: assistive technology reads the sort state of a header cell, and
    ignored it on the link (axe-core: aria-allowed-attr)."""
    direction = _sort_direction(column, current)
    return format_html(
        '<th scope="col"{}{}>{}</th>',
        format_html(' class="{}"', css) if css else "",
        format_html(' aria-sort="{}"', direction) if direction else "",
        sort_link(label, column, current, query),
    )


@register.simple_tag
def predecessor_label(license: License, predecessor: License) -> str:
    """What the license page and the result page call the license `license` came from:
    "Supersedes" when it replaced it whole, else "Upgraded from" (License.replaces_whole)."""
    return (
        gettext("Supersedes") if license.replaces_whole(predecessor) else gettext("Upgraded from")
    )


# One place for the badge of each value, as tags rather than per-row {% include %}s: a list of
# 50 rows rendered 100 template includes, a fifth of the page's time.
STATUS_BADGES: dict[str, str] = {
    License.Status.ACTIVE: "text-bg-success",
    License.Status.SUPERSEDED: "text-bg-secondary",
    License.Status.REVOKED: "text-bg-danger",
}
MAINTENANCE_BADGES: dict[str, tuple[str, Any]] = {
    "active": ("text-bg-success", _("current")),
    "expiring": ("text-bg-warning", _("expiring soon")),
    "expired": ("text-bg-danger", _("expired")),
    "inactive": ("text-bg-secondary", _("not in force")),
}


@register.simple_tag
def status_badge(license: License) -> SafeString:
    """The license's status as a coloured badge."""
    return status_badge_html(license.status, license.get_status_display())


def status_badge_html(status: str, label: Any) -> SafeString:
    return format_html(
        '<span class="badge {}">{}</span>', STATUS_BADGES.get(status, "text-bg-light"), label
    )


@register.simple_tag
def maintenance_badge(state: str) -> SafeString:
    """A maintenance state (License.maintenance_state) as a coloured badge."""
    css, label = MAINTENANCE_BADGES.get(state, MAINTENANCE_BADGES["expired"])
    return format_html('<span class="badge {}">{}</span>', css, label)


# One row of My licenses. The rows were 50 times ~40 template nodes (a url tag, filters, badges,
# a blocktranslate per row): most of the page's time. Here a row is one format call, and what
# is the same on every row (labels, the detail URL's prefix, badges, formatted dates) is
# prepared once per page, in the active language.
ROW = (
    '<tr><td class="list-select">{select}</td>'
    '<td class="fw-semibold"><a href="{url}">{product}</a></td>'
    '<td data-label="{l_version}">{version}</td>'
    '<td class="text-sm-end" data-label="{l_quantity}">{quantity}</td>'
    '<td class="font-monospace small" data-label="{l_key}"><details>'
    '<summary class="text-nowrap">{masked}</summary>'
    '<span class="user-select-all text-break">{key}</span></details></td>'
    '<td class="small text-break" data-label="{l_host}">{host}</td>'
    '<td data-label="{l_maintenance}">{maintenance_end} {maintenance}</td>'
    '<td data-label="{l_status}">{status}</td>'
    '<td class="small" data-label="{l_owner}">{owner}{shared}</td>'
    "{custom}</tr>"
)
SELECT_BOX = (
    '<input class="form-check-input" type="checkbox" name="licenses" value="{pk}" '
    'data-row-select id="select-{pk}" aria-label="{label} {masked}">'
)
CUSTOM_CELL = '<td class="small text-break" data-label="{}">{}</td>'


# The stdlib's escape, which Django's wraps (same output: & < > " ' escaped) at a few
# microseconds a call, 17 calls a row.
def _escape(value: Any) -> str:
    return html.escape(str(value))


# Django's numeric date format characters, as str.format fields of the day, month and year.
_DATE_FIELDS = {
    "d": "{d:02d}",
    "j": "{d}",
    "m": "{m:02d}",
    "n": "{m}",
    "Y": "{Y:04d}",
    "y": "{y:02d}",
}


def short_date_formatter() -> Callable[[date], str]:
    """date_format(value, "SHORT_DATE_FORMAT") in the active language, for many dates.

    date_format reads the format and parses it on every call: 50 times a page, a third of the
    rows' time. A format of numbers and separators only (both of the portal's languages) is
    parsed once, here; any other goes through date_format.
    """
    pattern = get_format("SHORT_DATE_FORMAT")
    if not set(pattern) <= {*_DATE_FIELDS, "/", ".", "-", " "}:
        return lambda value: date_format(value, "SHORT_DATE_FORMAT")
    template = "".join(_DATE_FIELDS.get(char, char) for char in pattern)
    return lambda value: template.format(
        d=value.day, m=value.month, Y=value.year, y=value.year % 100
    )


# The detail URL of any license is this one's with the id replaced: one reverse per page.
_URL_ID = "00000000-0000-0000-0000-000000000000"


@register.simple_tag
def license_rows(rows: list[dict[str, Any]]) -> SafeString:
    """The table rows of My licenses (licensing.views.licenses builds `rows`)."""
    labels = {
        f"l_{name}": conditional_escape(label)
        for name, label in (
            ("version", _("Version")),
            ("quantity", _("Quantity")),
            ("key", _("License key")),
            ("host", _("Host ID")),
            ("maintenance", _("Maintenance ends")),
            ("status", _("Status")),
            ("owner", _("Owner")),
        )
    }
    select_label = conditional_escape(_("Select"))
    url_pattern = reverse("license-detail", args=[_URL_ID])
    dates: dict[date, str] = {}
    short_date = short_date_formatter()
    status_html = {
        value: status_badge_html(value, label) for value, label in License.Status.choices
    }
    maintenance_html = {state: maintenance_badge(state) for state in MAINTENANCE_BADGES}
    shared_html: dict[str, str] = {}
    out = []
    for row in rows:
        license = row["license"]
        pk = str(license.pk)
        masked = _escape(mask_key(license.key))
        end = license.maintenance_end
        if end not in dates:
            dates[end] = _escape(short_date(end))
        owner = license.owner.name
        custom = row["custom"]
        shared = ""
        if not row["access"].is_owner:
            if owner not in shared_html:
                shared_html[owner] = format_html(
                    ' <span class="badge text-bg-info">{}</span>',
                    gettext("shared by %(name)s") % {"name": owner},
                )
            shared = shared_html[owner]
        out.append(
            ROW.format(
                select=(
                    SELECT_BOX.format(pk=pk, label=select_label, masked=masked)
                    if row["access"].is_owner
                    else ""
                ),
                url=url_pattern.replace(_URL_ID, pk),
                product=_escape(license.version.product.name),
                version=_escape(license.version.version),
                quantity=license.quantity,
                masked=masked,
                key=_escape(license.key),
                host=_escape(license.host_id or "—"),
                maintenance_end=dates[end],
                maintenance=maintenance_html.get(row["maintenance_state"], ""),
                status=status_html.get(license.status) or status_badge(license),
                owner=_escape(owner),
                shared=shared,
                custom="".join(CUSTOM_CELL.format(_escape(n), _escape(v)) for n, v in custom),
                **labels,
            )
        )
    return mark_safe("\n".join(out))  # every value above is escaped
