"""Manage my licenses: the list, its export, one license's page and its actions."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    F,
    Field,
    FilteredRelation,
    Func,
    Q,
    QuerySet,
    Value,
    When,
)
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.http import PortalRequest, organization_required, post_only
from portal.policy import Action, allows, refusal

from .. import listcache
from ..filters import INCLUDE_ALL, SORTS, LicenseFilter, without_full_key
from ..forms import (
    CustomValuesForm,
    RehostForm,
    RenewForm,
    ShareForm,
    SupportRegistrationForm,
)
from ..models import CustomField, CustomFieldValue, License, ProductVersion
from ..selectors import (
    LicenseAccess,
    access_of,
    custom_fields_visible,
    license_for,
    license_history,
    license_owner_reachable,
    license_shares,
    license_upgraded_seats,
    licenses_visible_to,
    related_licenses,
    upgrade_offered,
)
from ..services import (
    EXPORT_HEADER,
    FORMULA_START,
    LicensingError,
    SerialAlreadyRedeemed,
    csv_safe,
    custom_values_set,
    history_only_refusal,
    license_email_again,
    license_rehost,
    license_renew_with_serial,
    registration_update,
    rehost_refusal,
    rehost_stamp,
    rehosts_left,
    renewal_refusal,
)

PAGE_SIZE = 50
# Counting every match of a large list is a scan of all of them, for a figure nobody reads to
# the unit: past this many the list says "more than 10,000".
COUNT_CAP = 10_000


@dataclass(frozen=True)
class ListPage:
    """One page of the list, with the paginator's names the template uses.

    `count` is exact up to COUNT_CAP and COUNT_CAP + 1 beyond (`count_capped`). `next_cursor`
    and `previous_cursor` (None where a page is reached by its number) carry the sort value and
    id of the page's last and first rows, for the Next and Previous links.
    """

    number: int
    object_list: list[License]
    count: int
    has_next: bool
    page_size: int = PAGE_SIZE
    count_cap: int = COUNT_CAP
    next_cursor: str | None = None
    previous_cursor: str | None = None
    # The custom values of the page's licenses in the acting organization's fields, by license
    # id and field id.
    custom_values: dict[Any, dict[int, str]] = field(default_factory=dict)

    @property
    def paginator(self) -> ListPage:
        """Itself: `page.paginator.count` and `.num_pages` read as on a Django Page."""
        return self

    @property
    def count_capped(self) -> bool:
        return self.count > self.count_cap

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.page_size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


# No list has this many pages; a larger number (an edited URL) would be an OFFSET past
# PostgreSQL's bigint. Past the end, the list shows its last page anyway.
MAX_PAGE = 2**31


def _page_number(value: str | None) -> int:
    try:
        return min(MAX_PAGE, max(1, int(value or 1)))
    except ValueError:
        return 1


# The list's Next and Previous links carry a cursor, "<id>:<sort value>" of the row the page
# continues from (keyset pagination): page 1,000 then reads its 50 ids from the index where the
# cursor points, as page 1 does, instead of skipping 49,950. A page asked for by its number
# alone (an edited URL, the custom-field sorts whose values may be missing) skips with OFFSET.
AFTER, BEFORE = "after", "before"


def _sort_field(column: str) -> Field[Any, Any]:
    model: Any = License
    *relations, name = column.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model
    return model._meta.get_field(name)


def _cursor(row: tuple[Any, Any]) -> str:
    pk, value = row
    return f"{pk}:{value.isoformat() if isinstance(value, date) else value}"


def _after_cursor(
    ordered: QuerySet[License], column: str, descending: bool, cursor: str, *, backwards: bool
) -> QuerySet[License] | None:
    """`ordered` from the row past `cursor`, or None when the cursor does not parse. Backwards:
    the rows before it, nearest first."""
    raw_pk, _sep, raw = cursor.partition(":")
    if "\x00" in raw:  # an edited link: PostgreSQL's text refuses NUL
        return None
    try:
        pk = UUID(raw_pk)
        value = _sort_field(column).to_python(raw)
    except (ValueError, ValidationError):
        return None
    later = "lt" if descending != backwards else "gt"
    # The first condition alone is the index's range (owner, sort column, ...); the second
    # settles ties with the id.
    keyset = Q(**{f"{column}__{later}e": value}) & (
        Q(**{f"{column}__{later}": value}) | Q(**{column: value, f"pk__{later}": pk})
    )
    ordered = ordered.filter(keyset)
    return ordered.reverse() if backwards else ordered


# What a row of the list shows (licensing_tags.license_rows) and access_of reads: nothing more
# is read for a page.
ROW_COLUMNS = (
    "key",
    "quantity",
    "host_id",
    "status",
    "maintenance_end",
    "owner__name",
    "version__version",
    "version__product__name",
)


def _page_rows(queryset: QuerySet[License], *columns: str) -> QuerySet[License]:
    """`queryset`'s rows with what a row of the list shows (and `columns`), nothing more."""
    return (
        queryset.select_related(None)
        .select_related("version__product", "owner")
        .only(*ROW_COLUMNS, *columns)
    )


def _value_of(license: License, column: str) -> Any:
    """The value of a sort column (a field of the license or along its joins) on a row."""
    value: Any = license
    for name in column.split("__"):
        value = getattr(value, name)
    return value


def _list_page(
    license_filter: LicenseFilter, number: str | None, cursors: QueryDict | None = None
) -> ListPage:
    """The requested page (the last one when it is past the end).

    The first page and a page reached by a cursor, sorted on a column of the license, read
    their rows whole, with their joins, in one query: an index range of PAGE_SIZE + 1 rows
    either way. Other pages read their ids first, from the filtered, sorted query alone (an
    index-only scan for the usual sorts, so that OFFSET skips index entries, not joined rows;
    a sort of narrow rows for the others), then those rows.
    The capped count is read only when the rows do not tell it (a short first or last page).
    """
    ordered = license_filter.sorted_queryset()
    column, descending = license_filter.sort_column()
    page = _page_number(number)
    after, before = (cursors.get(AFTER), cursors.get(BEFORE)) if cursors else (None, None)
    cursor, backwards = (after, False) if after else (before, bool(before))
    continued = (
        _after_cursor(ordered, column, descending, cursor, backwards=backwards)
        if cursor and column and page > 1
        else None
    )
    start = (page - 1) * PAGE_SIZE
    window = (
        continued[: PAGE_SIZE + 1]
        if continued is not None
        else ordered[start : start + PAGE_SIZE + 1]
    )
    # Sorted on a column of the joined tables (product, version, owner) or a custom value,
    # PostgreSQL sorts every match: narrow id rows, not whole ones (at 100,000 licenses the
    # product sort took 1.8 times as long whole).
    whole = (continued is not None or start == 0) and column is not None and "__" not in column
    objects: list[License] = []
    if whole:
        objects = list(_page_rows(window, column or "pk"))
        rows = [(license.pk, _value_of(license, column or "pk")) for license in objects]
    else:
        rows = list(window.values_list("pk", column or "pk"))
    if continued is not None and not rows:  # nothing past the cursor any more: by number
        return _list_page(license_filter, number)
    if backwards and continued is not None:  # a cursor that did not parse reads by number
        if len(rows) <= PAGE_SIZE:  # back at the start
            return _list_page(license_filter, "1")
        rows, objects = rows[:PAGE_SIZE][::-1], objects[:PAGE_SIZE][::-1]
        has_next = True
    else:
        has_next = len(rows) > PAGE_SIZE
        rows, objects = rows[:PAGE_SIZE], objects[:PAGE_SIZE]
    if not has_next and continued is None and (rows or page == 1):
        count = start + len(rows)  # the last page: the ids tell the count
    else:
        count = ordered.order_by().values("pk")[: COUNT_CAP + 1].count()
    if not rows and page > 1:  # past the end: the last page
        if count > COUNT_CAP:
            count = ordered.order_by().count()
        return _list_page(license_filter, str(max(1, -(-count // PAGE_SIZE))))
    ids = [pk for pk, _value in rows]
    if not whole:
        objects = list(_page_rows(license_filter.queryset.filter(pk__in=ids)))
    by_id = {license.pk: license for license in objects}
    custom_values: dict[Any, dict[int, str]] = {}
    if license_filter.custom_fields and by_id:
        # Plain tuples in one query, not prefetched model rows (no measurable CPU change).
        for license_id, field_id, value in CustomFieldValue.objects.filter(
            license_id__in=list(by_id), field__in=license_filter.custom_fields
        ).values_list("license_id", "field_id", "value"):
            custom_values.setdefault(license_id, {})[field_id] = value
    return ListPage(
        number=page,
        object_list=[by_id[pk] for pk in ids if pk in by_id],
        count=count,
        has_next=has_next,
        page_size=PAGE_SIZE,
        count_cap=COUNT_CAP,
        next_cursor=_cursor(rows[-1]) if column and has_next else None,
        previous_cursor=_cursor(rows[0]) if column and page > 2 else None,
        custom_values=custom_values,
    )


def _filtered(
    request: PortalRequest, base: QuerySet[License] | None = None
) -> tuple[LicenseFilter, list[CustomField]]:
    # Columns, filters, sorts, search and export over custom values: only for an actor who may
    # read them (a partner needs the manage-data scope).
    custom_fields = custom_fields_visible(access=request.access)
    if base is None:
        base = licenses_visible_to(actor=request.user, organization=request.organization)
    return (
        LicenseFilter(
            request.GET or None,
            queryset=base,
            custom_fields=custom_fields,
            organization=request.organization,
            actor=request.user,
        ),
        custom_fields,
    )


LIST_TEMPLATE = "licensing/license_list.html"


@organization_required(action=Action.VIEW_LICENSES)
def license_list(request: PortalRequest) -> HttpResponse:
    return license_list_render(request)


def license_list_render(
    request: PortalRequest,
    *,
    base: QuerySet[License] | None = None,
    template: str = LIST_TEMPLATE,
    context: dict[str, Any] | None = None,
) -> HttpResponse:
    """The My licenses list (filters, search, sorting, pages) over `base`, with `template`.

    For other apps that list a part of what the actor sees with the same components (an
    Enterprise Flexible contract's licenses): `base` must come from licenses_visible_to, and
    `template` may extend licensing/license_list.html.
    """
    # A full key typed into the search would sit in the URL (history, logs): search by its tail.
    keyless = without_full_key(request.GET)
    if keyless is not None:
        return redirect(f"{request.path}?{keyless.urlencode()}")
    # My licenses itself may come from its page cache (licensing/listcache.py).
    own_page = base is None and context is None and template == LIST_TEMPLATE
    key = listcache.key_for(request) if own_page else None
    content = listcache.cached(key)
    if content is not None:
        response = render(
            request, "licensing/license_list_cached.html", {"content": mark_safe(content)}
        )
        return listcache.with_token(request, response)
    license_filter, custom_fields = _filtered(request, base)
    page = _list_page(license_filter, request.GET.get("page"), request.GET)
    today = timezone.localdate()
    rows: list[dict[str, Any]] = []
    for license in page.object_list:
        access = access_of(license, access=request.access)
        # Custom columns are the acting organization's fields; a shared license shows none.
        values = page.custom_values.get(license.pk, {}) if access.is_owner else {}
        rows.append(
            {
                "license": license,
                "access": access,
                "maintenance_state": license.maintenance_state(today=today),
                "custom": [(f.name, values.get(f.pk, "")) for f in custom_fields],
            }
        )
    query = request.GET.copy()
    for name in ("page", AFTER, BEFORE):
        query.pop(name, None)
    sort_query = query.copy()
    sort_query.pop("sort", None)
    showing_all = license_filter.shows_all_statuses()
    toggle_query = query.copy()
    toggle_query.pop("status", None)
    if showing_all:
        toggle_query.pop("include", None)
    else:
        toggle_query["include"] = INCLUDE_ALL
    response = render(
        request,
        template,
        {
            "filter": license_filter,
            "page": page,
            "rows": rows,
            "custom_fields": custom_fields,
            "sort": license_filter.sort_key(),
            "sortable": list(SORTS),
            "query": query.urlencode(),
            "sort_query": sort_query.urlencode(),
            "can_share": allows(request, Action.SHARE_LICENSES),
            "can_bulk_custom_data": allows(request, Action.BULK_CUSTOM_DATA),
            "can_view_custom_fields": allows(request, Action.VIEW_CUSTOM_FIELDS),
            "has_owned": any(row["access"].is_owner for row in rows),
            "showing_all": showing_all,
            # Only My licenses itself: "all matching" resolves the filters over My licenses,
            # not over another app's narrower base (an Enterprise Flexible catalog).
            "can_select_matching": base is None,
            "filtered": any(
                value for key, value in request.GET.items() if key not in (*NOT_FILTERS, "q")
            ),
            "toggle_query": toggle_query.urlencode(),
            "empty_state": _empty_state(request, license_filter) if not rows else "",
            **(context or {}),
            **(
                {"cache_markers": True, "csrf_token": listcache.CSRF_PLACEHOLDER}
                if key is not None
                else {}
            ),
        },
    )
    if key is None:
        return response
    listcache.store(key, response)
    return listcache.with_token(request, response)


# "All N matching the filters" acts on at most this many licenses at once.
BULK_LIMIT = COUNT_CAP


class SelectionTooLarge(LicensingError):
    """A bulk action asked for more licenses than BULK_LIMIT."""


def bulk_selection(request: PortalRequest) -> list[License]:
    """The licenses a bulk action from the list (share, custom data) acts on: the ticked ones,
    or with `all_matching` every license the list's filters (posted back as `matching`, the
    list's query string) select. Either way only the acting organization's own licenses among
    those the actor sees: the posted ids and filters choose, the selectors decide.
    """
    organization = request.organization
    own = licenses_visible_to(actor=request.user, organization=organization).filter(
        owner=organization
    )
    if request.POST.get("all_matching"):
        license_filter = LicenseFilter(
            QueryDict(request.POST.get("matching", "")) or None,
            queryset=own,
            custom_fields=custom_fields_visible(access=request.access),
            organization=organization,
            actor=request.user,
        )
        licenses = list(license_filter.sorted_queryset()[: BULK_LIMIT + 1])
        if len(licenses) > BULK_LIMIT:
            raise SelectionTooLarge(
                _(
                    "More than %(limit)s licenses match these filters. Narrow them down, "
                    "then apply the action again."
                )
                % {"limit": f"{BULK_LIMIT:,}"}
            )
        return licenses
    try:
        ids = [str(UUID(value)) for value in request.POST.getlist("licenses")]
    except ValueError as exc:
        raise Http404 from exc
    return list(own.filter(pk__in=ids))


# Parameters that narrow the list; sorting, paging and the status switch do not.
NOT_FILTERS = ("sort", "page", AFTER, BEFORE, "include")


def _empty_state(request: PortalRequest, license_filter: LicenseFilter) -> str:
    """Why the list is empty, so that the page says what is true: "filtered" (nothing matches
    the filters), "none_current" (only superseded or revoked licenses), or "none"."""
    if any(value for key, value in request.GET.items() if key not in NOT_FILTERS):
        return "filtered"
    if license_filter.queryset.exists():
        return "none_current"
    return "none"


EXPORT_COLUMNS = [
    "pk",
    "owner_id",
    "key",
    "version__product__name",
    "version__product__sku",
    "version__version",
    "quantity",
    "host_id",
    "status",
    "maintenance_start",
    "maintenance_end",
    "owner__name",
    "owner__account_number",
    "source",
    "source_ref",
    "registration__company",
    "registration__technical_name",
    "registration__technical_email",
    "issued_at",
]
EXPORT_CHUNK = 10_000  # rows per fetch from the server-side cursor: fewer round trips
SOURCE_REF_COLUMN = EXPORT_HEADER.index("source_ref")
ISSUED_AT_COLUMN = EXPORT_HEADER.index("issued_at")
# Columns that can hold text someone typed (names, references, contacts, custom values): the
# only ones a spreadsheet could read as a formula. Numbers, dates and choices cannot.
TEXT_COLUMNS = tuple(
    EXPORT_HEADER.index(name)
    for name in (
        "key",
        "product",
        "sku",
        "version",
        "host_id",
        "owner",
        "account",
        "source_ref",
        "company",
        "technical_contact",
        "technical_email",
    )
)
# csv_safe guards a cell that starts with one of these.
GUARD_START = FORMULA_START | {"'"}
EXPORT_BLOCK = 256 * 1024  # characters per write to the socket
# Excel reads a CSV without a byte order mark in the system's legacy code page ("SÃ£o Paulo");
# the upload (and Python's "utf-8-sig") takes it off again.
BOM = "\ufeff"


def _export_query(
    request: PortalRequest, base: QuerySet[License] | None
) -> tuple[list[str], QuerySet[License], list[str]]:
    """The export's header, its filtered and sorted licenses, and the custom value columns."""
    license_filter, custom_fields = _filtered(request, base)
    # Custom values come in the same query, a LEFT JOIN per field (one value per license and
    # field, by constraint), instead of a query per chunk of licenses.
    joins = {
        f"cf_{f.pk}": FilteredRelation("custom_values", condition=Q(custom_values__field_id=f.pk))
        for f in custom_fields
    }
    header = EXPORT_HEADER + [f.name for f in custom_fields]
    queryset = license_filter.sorted_queryset().annotate(**joins)
    return header, queryset, [f"{name}__value" for name in joins]


def _export_rows(
    request: PortalRequest, base: QuerySet[License] | None = None
) -> tuple[list[str], Iterator[list[Any]]]:
    header, queryset, custom_columns = _export_query(request, base)
    owner_id = request.organization.pk
    blanks = [""] * len(custom_columns)
    width = len(EXPORT_COLUMNS) - 2  # without pk and owner_id
    values = queryset.values_list(*EXPORT_COLUMNS, *custom_columns)

    def rows() -> Iterator[list[Any]]:
        # Tuples, not model instances, read through a server-side cursor: memory stays flat.
        for row in _read_only_pass(values.iterator(chunk_size=EXPORT_CHUNK)):
            line = list(row[2:])
            line[ISSUED_AT_COLUMN] = line[ISSUED_AT_COLUMN].isoformat(timespec="seconds")
            if row[1] != owner_id:  # a shared license: not the owner's reference or data
                line[SOURCE_REF_COLUMN] = ""
                line[width:] = blanks
            else:
                line[width:] = [value or "" for value in line[width:]]
            yield line

    return header, rows()


class _CsvText(Func):
    """PostgreSQL: a text column as csv_safe and csv.writer write it (a quote before a leading
    formula character, after any quotes already there, unless the whole cell is a negative
    number; an empty value unquoted)."""

    template = (
        "CASE WHEN left(%(expressions)s, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r', '''') "
        "AND %(expressions)s ~ E'^''*[-=+@\\t\\r]' "
        "AND %(expressions)s !~ '^-[0-9]+([.][0-9]+)?$' THEN '''' || %(expressions)s "
        "ELSE NULLIF(%(expressions)s, '') END"
    )
    output_field = CharField()


def _copy_cells(request: PortalRequest, custom_columns: list[str]) -> dict[str, Any]:
    """PostgreSQL: the export's cells as the server writes them, the same text _export_rows
    and _csv_blocks write."""
    owned = Q(owner_id=request.organization.pk)
    text = set(TEXT_COLUMNS)
    cells: dict[str, Any] = {}
    for index, column in enumerate(EXPORT_COLUMNS[2:]):
        if column == "issued_at":
            cell: Any = _IsoSeconds("issued_at")
        elif column in ("maintenance_start", "maintenance_end"):
            cell = Func(F(column), template="to_char(%(expressions)s, 'YYYY-MM-DD')")
        elif index in text:
            cell = _CsvText(F(column))
        else:
            cell = F(column)
        if index == SOURCE_REF_COLUMN:  # the owner's purchase reference
            cell = Case(When(owned, then=cell), default=Value(None), output_field=CharField())
        cells[f"csv_{index}"] = cell
    for index, column in enumerate(custom_columns):  # the owner's custom data
        cells[f"csv_cf_{index}"] = Case(
            When(owned, then=_CsvText(F(column))), default=Value(None), output_field=CharField()
        )
    return cells


def _copy_blocks(request: PortalRequest, base: QuerySet[License] | None) -> Iterator[bytes]:
    """PostgreSQL: the CSV written by the server (COPY ... TO STDOUT) in blocks of about
    EXPORT_BLOCK bytes: no Python object per row or cell."""
    header, queryset, custom_columns = _export_query(request, base)
    cells = _copy_cells(request, custom_columns)
    sql, params = queryset.annotate(**cells).values_list(*cells).query.sql_with_params()
    buffer = io.StringIO()
    buffer.write(BOM)
    csv.writer(buffer, lineterminator="\n").writerow([csv_safe(v) for v in header])
    yield buffer.getvalue().encode()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")  # see _read_only_pass
        block = bytearray()
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
            for data in copy:
                block += data
                if len(block) >= EXPORT_BLOCK:
                    yield bytes(block)
                    block.clear()
        yield bytes(block)


class _IsoSeconds(Func):
    """PostgreSQL: a timestamp as datetime.isoformat(timespec="seconds") writes it in UTC."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"
    output_field = CharField()


def _read_only_pass(rows: Iterator[Any]) -> Iterator[Any]:
    """`rows` read in one transaction: one snapshot for the whole file, and on PostgreSQL a
    server-side cursor without WITH HOLD (which copies the whole result before the first row
    in autocommit) and with the JIT compiler off for it (the export's plan costs enough to
    trigger JIT, and compiling took 0.8 s, longer than the query it was meant to speed up)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield from rows


def _csv_blocks(
    header: list[str], rows: Iterator[list[Any]], text_columns: list[int]
) -> Iterator[bytes]:
    """CSV in blocks of about EXPORT_BLOCK characters, escaping only the text columns."""
    buffer = io.StringIO()
    buffer.write(BOM)
    # Lines end in LF, as PostgreSQL's COPY writes them (_copy_blocks): one file either way.
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_safe(value) for value in header])
    for line in rows:
        for index in text_columns:
            value = line[index]
            if value and value[0] in GUARD_START:
                line[index] = csv_safe(value)
        writer.writerow(line)
        if buffer.tell() >= EXPORT_BLOCK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


@organization_required(action=Action.VIEW_LICENSES)
def license_export(request: PortalRequest, fmt: str) -> HttpResponseBase:
    if fmt == "csv":
        return license_csv_response(request)
    if fmt != "xlsx":
        raise Http404
    import xlsxwriter  # on first use: a web worker that never exports does not carry it

    header, rows = _export_rows(request)
    stamp = timezone.localdate().isoformat()
    # constant_memory writes each row to disk as it goes; the file is then streamed from disk.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by FileResponse
    workbook = xlsxwriter.Workbook(
        spool,
        {
            "constant_memory": True,
            "in_memory": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    sheet = workbook.add_worksheet(_("Licenses")[:31])
    bold = workbook.add_format({"bold": True})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, header, bold)
    for index, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            if isinstance(value, date):
                sheet.write_datetime(index, column, value, date_format)
            else:
                sheet.write(index, column, value)
    workbook.close()
    spool.seek(0)
    return FileResponse(
        spool,
        as_attachment=True,
        filename=f"licenses-{stamp}.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def license_csv_response(
    request: PortalRequest, *, base: QuerySet[License] | None = None, name: str = "licenses"
) -> StreamingHttpResponse:
    """The list's CSV export (the request's filters over `base`), streamed in blocks."""
    stamp = timezone.localdate().isoformat()
    blocks: Iterator[bytes]
    if connection.vendor == "postgresql":
        blocks = _copy_blocks(request, base)
    else:
        header, rows = _export_rows(request, base)
        text_columns = [*TEXT_COLUMNS, *range(len(EXPORT_HEADER), len(header))]
        blocks = _csv_blocks(header, rows, text_columns)
    response = StreamingHttpResponse(blocks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def _license_and_access(request: PortalRequest, pk: UUID) -> tuple[License, LicenseAccess]:
    license = license_for(actor=request.user, organization=request.organization, pk=pk)
    return license, access_of(license, access=request.access)


def _require(access: LicenseAccess, action: Action) -> None:
    if not access.allows(action):
        if access.owner is not None:
            raise PermissionDenied(refusal(delegated=access.owner.is_delegated, actions=[action]))
        raise PermissionDenied(_("Your access to this license is read-only."))


@organization_required(action=(Action.VIEW_LICENSES, Action.VIEW_OWN_RESULTS))
def license_detail(request: PortalRequest, pk: UUID) -> HttpResponse:
    try:
        license, access = _license_and_access(request, pk)
    except Http404:
        # A link (an email's) to a license of another organization of the actor's, or of a
        # customer it acts for as a partner: say where it is, to those who could see it only.
        elsewhere = license_owner_reachable(actor=request.user, pk=pk)
        if elsewhere is None:
            raise
        return render(
            request,
            "licensing/license_elsewhere.html",
            {"owner": elsewhere.organization, "delegated": elsewhere.is_delegated},
            status=404,
        )
    return _render_detail(request, license, access)


def _owner_fields(license: License) -> list[CustomField]:
    return list(CustomField.objects.filter(organization_id=license.owner_id))


def _render_detail(
    request: PortalRequest,
    license: License,
    access: LicenseAccess,
    *,
    custom_form: CustomValuesForm | None = None,
    renew_form: RenewForm | None = None,
    rehost_form: RehostForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The license page; a form is passed back with its errors after a refused save, renewal
    or move (`custom_form`, `renew_form`, `rehost_form`)."""
    # The owner's custom data is the owner's: a share recipient neither sees nor edits it, nor
    # does a partner without the manage-data scope.
    owner_fields: list[CustomField] = []
    values: dict[int, str] = {}
    shows_custom_data = access.is_owner and access.allows(Action.VIEW_CUSTOM_FIELDS)
    if shows_custom_data:
        owner_fields = custom_form.custom_fields if custom_form else _owner_fields(license)
        values = {v.field_id: v.value for v in license.custom_values.all()}
    if custom_form is None:
        custom_form = CustomValuesForm(custom_fields=owner_fields, initial_values=values)
    product = license.version.product
    related = related_licenses(
        actor=request.user, organization=request.organization, license=license
    )
    events = license_history(license, access=access)
    history = list(events.select_related("actor")[:100])
    # The license that superseded this one, where the actor may open it (related_licenses):
    # the history's "Superseded by" links to it.
    visible = {str(successor.pk): successor for successor in related.successors}
    for event in history:
        # Seats upgraded (part of the license) name their new license as "new_license".
        if event.action in ("license.superseded", "license.upgraded"):
            successor = event.details.get("by") or event.details.get("new_license")
            event.successor = visible.get(str(successor))  # type: ignore[attr-defined]
    upgraded = license_upgraded_seats(license, successors=related.successors)
    # Enterprise Flexible keys are upgraded through their contract: no notice on their page.
    newer = (
        None
        if license.follows_contract
        else ProductVersion.objects.filter(
            product=product,
            published_at__isnull=False,
            released_on__gt=license.version.released_on,
        )
        .order_by("-released_on")
        .first()
    )
    # The renewal and move forms are offered only on a license they can act on.
    manageable = access.can_manage and license.status == License.Status.ACTIVE
    moves_left = rehosts_left(license) if product.node_locked else None
    renew_offered = manageable and not license.follows_contract
    rehost_offered = manageable and product.node_locked and bool(moves_left)
    for form, offered, summary in (
        (renew_form, renew_offered, _("Maintenance was not renewed: see below.")),
        (rehost_form, rehost_offered, _("The license was not moved: see below.")),
    ):
        if form is not None and form.errors:
            if offered:  # the errors are at the form's fields
                messages.error(request, summary)
            else:  # the license changed meanwhile, or never took the form: no field to show
                for errors in form.errors.values():
                    for error in errors:
                        messages.error(request, str(error))
    context = {
        # Also shown at the POST-only addresses of a refused renewal, move or save: the
        # switchers at the top return to the license page (base.html), not to those.
        "page_url": reverse("license-detail", kwargs={"pk": license.pk}),
        "license": license,
        "access": access,
        "product": product,
        "manageable": manageable,
        # A superseded or revoked license is history: its data, contacts and shares are shown,
        # not edited (history_only_refusal).
        "editable": license.status == License.Status.ACTIVE,
        "renew_offered": renew_offered,
        "rehost_offered": rehost_offered,
        "maintenance_state": license.maintenance_state(today=timezone.localdate()),
        # The software this license entitles to (FileConnect), for those who may download;
        # a superseded or revoked license entitles to nothing (its successor does).
        "can_download": (
            access.is_owner
            and access.allows(Action.DOWNLOAD_SOFTWARE)
            and license.status == License.Status.ACTIVE
        ),
        "history": history,
        # Seats moved to a newer version by upgrades: the page says so instead of "Quantity 0".
        "upgraded_seats": upgraded.count,
        "upgraded_to": upgraded.to,
        "supersedes": related.supersedes,
        # A license upgraded in part is still active with the seats it kept: a newer license
        # that took some of them does not supersede it (the quantity says where they went).
        "superseded_by": (
            related.superseded_by if license.status != License.Status.ACTIVE else None
        ),
        "shares": license_shares(license) if access.can_share else [],
        "share_form": ShareForm(),
        "renew_form": renew_form or RenewForm(),
        "rehost_form": rehost_form or RehostForm(),
        "rehosts_left": moves_left,
        "retired_keys": license.retired_keys.all()[:20],
        "newer_version": newer,
        # Released within the current period or the one before a lapse (License.covers).
        "newer_covered": newer is not None and license.covers(newer.released_on),
        "custom_form": custom_form,
        "shows_custom_data": shows_custom_data,
        # The breadcrumb's My licenses: not for an obtain-keys partner, whom it would refuse.
        "can_list_licenses": allows(request, Action.VIEW_LICENSES),
        "custom_rows": [(f, values.get(f.pk, "")) for f in owner_fields],
    }
    # "Available at no cost" only where Version upgrade offers it: a license issued or renewed
    # since the publication joins a notification the next day, not at once.
    context["upgrade_offered"] = (
        newer is not None
        and access.is_owner
        and license.status == License.Status.ACTIVE
        and license.maintenance_end >= newer.released_on
        and upgrade_offered(license, today=timezone.localdate())
    )
    return render(request, "licensing/license_detail.html", context, status=status)


@post_only(back="license-detail")
@organization_required(action=Action.MANAGE_DATA)
def license_custom_values(request: PortalRequest, pk: UUID) -> HttpResponse:
    license, access = _license_and_access(request, pk)
    if not access.is_owner:
        raise PermissionDenied(_("Only the organization that owns this license keeps data on it."))
    _require(access, Action.MANAGE_DATA)
    refusal = history_only_refusal(license)
    if refusal:  # superseded meanwhile, or a page from before: nothing is written
        messages.error(request, refusal)
        return redirect("license-detail", pk=license.pk)
    owner_fields = _owner_fields(license)
    form = CustomValuesForm(
        request.POST,
        custom_fields=owner_fields,
        # The values now: a choice no longer among the options is kept as it is.
        initial_values={v.field_id: v.value for v in license.custom_values.all()},
    )
    if form.is_valid():
        if custom_values_set(
            licenses=[license], values=form.values, actor=request.user, fields=owner_fields
        ):
            messages.success(request, _("Custom data saved."))
        else:
            messages.info(request, _("Nothing changed."))
        return redirect("license-detail", pk=license.pk)
    messages.error(request, _("Some values are not valid: see below."))
    return _render_detail(request, license, access, custom_form=form, status=400)


@post_only(back="license-detail")
@organization_required(action=Action.MANAGE_LICENSES)
def license_email_view(request: PortalRequest, pk: UUID) -> HttpResponse:
    license, access = _license_and_access(request, pk)
    _require(access, Action.MANAGE_LICENSES)
    try:
        recipients = license_email_again(license=license, actor=request.user)
    except LicensingError as exc:
        messages.error(request, str(exc))
        return redirect("license-detail", pk=license.pk)
    messages.success(
        request,
        _("The key and license file were emailed to %(to)s.") % {"to": ", ".join(recipients)},
    )
    return redirect("license-detail", pk=license.pk)


@organization_required(action=Action.MANAGE_DATA)
def registration_edit(request: PortalRequest, pk: UUID) -> HttpResponse:
    license, access = _license_and_access(request, pk)
    _require(access, Action.MANAGE_DATA)
    refusal = history_only_refusal(license)
    if refusal:
        messages.error(request, refusal)
        return redirect("license-detail", pk=license.pk)
    form = SupportRegistrationForm(request.POST or None, instance=license.registration)
    if request.method == "POST" and form.is_valid():
        # The service writes; the form only validated (its instance is not saved here).
        data = {name: form.cleaned_data[name] for name in SupportRegistrationForm.Meta.fields}
        license.registration.refresh_from_db()
        registration_update(license=license, actor=request.user, data=data)
        messages.success(request, _("Support registration updated."))
        return redirect("license-detail", pk=license.pk)
    return render(request, "licensing/registration_edit.html", {"license": license, "form": form})


# A renewal serial already applied to this very license, submitted again.
ALREADY_RENEWED = gettext_lazy(
    "This renewal serial number is already applied to this license: its maintenance was "
    "renewed with it. Nothing else changed."
)


@post_only(back="license-detail")
@organization_required(action=Action.MANAGE_LICENSES)
def license_renew_view(request: PortalRequest, pk: UUID) -> HttpResponse:
    from portal.ratelimit import CodeGuard, code_limit_message

    from ..codes import CodeFormatError
    from ..forms import CODE_FORMAT_MESSAGES

    license, access = _license_and_access(request, pk)
    _require(access, Action.MANAGE_LICENSES)
    form = RenewForm(request.POST)
    guard = CodeGuard(request, organization=request.organization, action="serial.rate_limited")
    refusal = renewal_refusal(license)
    if refusal:  # whatever was typed: not a failed code, and the page offers no renewal form
        messages.error(request, refusal)
        return _render_detail(request, license, access, status=400)
    budget = guard.budget()
    if budget.exhausted:
        form.add_error("serial", code_limit_message(budget.minutes_left))
    elif form.is_valid():
        try:
            license_renew_with_serial(
                license=license,
                code=form.cleaned_data["serial"],
                organization=license.owner,
                actor=request.user,
            )
        except SerialAlreadyRedeemed as exc:
            # The organization's own serial: a genuine code, not a guess, so no failed attempt.
            if exc.license.pk == license.pk:
                # Already applied here: a double click on Renew (the browser shows the second
                # reply) or the page submitted again. The renewal stands; say so.
                messages.info(request, ALREADY_RENEWED)
                return redirect("license-detail", pk=license.pk)
            form.add_error("serial", str(exc))
        except (CodeFormatError, LicensingError) as exc:
            guard.failed()
            reason = getattr(exc, "reason", None)
            form.add_error("serial", CODE_FORMAT_MESSAGES[reason] if reason else str(exc))
            # The page shows the license as it is now, not as read before the service refused.
            license, access = _license_and_access(request, pk)
        else:
            messages.success(request, _("Maintenance renewed. A new license file was issued."))
            return redirect("license-detail", pk=license.pk)
    return _render_detail(request, license, access, renew_form=form, status=400)


@post_only(back="license-detail")
@organization_required(action=Action.MANAGE_LICENSES)
def license_rehost_view(request: PortalRequest, pk: UUID) -> HttpResponse:
    license, access = _license_and_access(request, pk)
    _require(access, Action.MANAGE_LICENSES)
    form = RehostForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, license, access, rehost_form=form, status=400)
    host_id = form.cleaned_data["host_id"]
    if request.POST.get("confirm") != "1" and not rehost_refusal(license, host_id):
        # Nothing wrong with the request: say what it will do before doing it.
        return _rehost_confirmation(request, license, " ".join(host_id.split()))
    try:
        license = license_rehost(
            license=license,
            host_id=form.cleaned_data["host_id"],
            actor=request.user,
            # The key the confirmation page named (a script may leave it out).
            stamp=request.POST.get("stamp"),
        )
    except LicensingError as exc:
        form.add_error("host_id", str(exc))
        # As it is now: a colleague may have moved it while this request was confirming.
        license, access = _license_and_access(request, pk)
        return _render_detail(request, license, access, rehost_form=form, status=400)
    messages.success(
        request,
        _("The license now runs on %(host)s with a new key. The old key is revoked.")
        % {"host": license.host_id},
    )
    return redirect("license-detail", pk=license.pk)


def _rehost_confirmation(request: PortalRequest, license: License, host_id: str) -> HttpResponse:
    """Before a rehost: the current key stops working, a new one is issued for `host_id`."""
    return render(
        request,
        "licensing/rehost_confirm.html",
        {
            "page_url": reverse("license-detail", kwargs={"pk": license.pk}),
            "license": license,
            "host_id": host_id,
            "stamp": rehost_stamp(license),
            "moves_after": max(0, rehosts_left(license) - 1),
        },
    )
