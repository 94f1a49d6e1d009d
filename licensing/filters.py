"""The "My licenses" list: filters, free-text search and sorting, all carried in the URL."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Any

import django_filters
from django import forms
from django.contrib.auth.models import AnonymousUser
from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.functions import Cast
from django.forms.renderers import DjangoTemplates
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from portal.models import Organization, User

from .codes import GROUP, KEY_LENGTH, compact, is_base32
from .models import (
    CustomField,
    CustomFieldValue,
    License,
    ProductVersion,
    SerialNumber,
    SupportRegistration,
)
from .selectors import active_shares
from .services import custom_value_clean

# Not the status words ("Active", "Expired"): a license's status and its maintenance are two
# different things, and the two filters sit side by side.
MAINTENANCE_CHOICES = [
    ("active", _("Maintenance current")),
    ("expiring", _("Maintenance ending within 90 days")),
    ("expired", _("Maintenance ended")),
]

# Statuses shown when the list is not asked for the others ("include=all" or a status filter):
# what a customer can still use. Superseded and revoked licenses are history.
CURRENT_STATUSES = (License.Status.ACTIVE,)
INCLUDE_ALL = "all"

# Licenses touched by the serials a search matches, followed along upgrades (each upgrade
# supersedes the license it upgraded) this many steps either way.
SERIAL_LINEAGE_STEPS = 5

SORTS: dict[str, str] = {
    "product": "version__product__name",
    "version": "version__version",
    "quantity": "quantity",
    "key": "key",
    "host": "host_id",
    "maintenance": "maintenance_end",
    "status": "status",
    "owner": "owner__name",
    "issued": "issued_at",
}
DEFAULT_SORT = "-issued"


def without_full_key(query: QueryDict) -> QueryDict | None:
    """The list's query with a full license key in the search cut to its last two groups, or
    None when it holds none.

    The list's URL is repeated in its sort, page and export links, browser history, server logs
    and Referer headers: a whole key must not travel there. Two groups (50 bits) still find the
    one license.
    """
    chars = compact(query.get("q", ""))
    if len(chars) != KEY_LENGTH or not is_base32(chars):
        return None
    shortened = query.copy()
    shortened["q"] = f"{chars[-2 * GROUP : -GROUP]}-{chars[-GROUP:]}"
    return shortened


# A number as custom_value_clean stores it (at most 30 digits before the point, 20 after).
STORED_NUMBER = r"^-?[0-9]{1,30}(\.[0-9]{1,20})?$"
SORT_NUMBER: DecimalField[Any, Any] = DecimalField(max_digits=50, decimal_places=20)


def _custom_value(custom_field: CustomField) -> Subquery:
    """A license's value in `custom_field`, to sort on: a number field's as a number (a value
    stored before numbers were checked, not a number, as none), others as text."""
    values = CustomFieldValue.objects.filter(license=OuterRef("pk"), field=custom_field)
    if custom_field.field_type != CustomField.Type.NUMBER:
        return Subquery(values.values("value")[:1])
    # The CASE, not a WHERE beside the cast: it alone guarantees no other text is cast.
    number = Case(
        When(value__regex=STORED_NUMBER, then=Cast("value", SORT_NUMBER)),
        default=None,
        output_field=SORT_NUMBER,
    )
    return Subquery(values.annotate(number=number).values("number")[:1], output_field=SORT_NUMBER)


# Ids read before the main query in a search (see filter_search); past this many, the subquery
# itself goes into the main query instead.
SEARCH_ID_CAP = 1000


def _ids_or_subquery(column: str, ids_query: QuerySet[Any, Any]) -> Q:
    """`column IN (ids)` with the ids read first when they are few, else with the subquery."""
    ids = list(ids_query[: SEARCH_ID_CAP + 1])
    if len(ids) > SEARCH_ID_CAP:
        return Q(**{f"{column}__in": ids_query})
    return Q(**{f"{column}__in": ids})


# The filter form's widgets as Django renders them, written out in Python: rendering them through
# the widget templates (a template per option, another per attribute list) was a sixth of the
# list page's time. Any other widget still goes through its template.
INPUT_TEMPLATES = frozenset(
    f"django/forms/widgets/{name}.html"
    for name in ("input", "text", "search", "number", "date", "email", "hidden")
)
SELECT_TEMPLATE = "django/forms/widgets/select.html"


def _attrs_html(attrs: dict[str, Any]) -> str:
    return "".join(
        f" {name}" if value is True else f' {name}="{escape(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


def _widget_html(template_name: str, widget: dict[str, Any]) -> str | None:
    if template_name in INPUT_TEMPLATES:
        value = "" if widget["value"] is None else f' value="{escape(widget["value"])}"'
        return (
            f'<input type="{widget["type"]}" name="{escape(widget["name"])}"{value}'
            f"{_attrs_html(widget['attrs'])}>"
        )
    if template_name == SELECT_TEMPLATE:
        html = [f'<select name="{escape(widget["name"])}"{_attrs_html(widget["attrs"])}>']
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                html.append(f'<optgroup label="{escape(group_name)}">')
            html.extend(
                f'<option value="{escape(option["value"])}"{_attrs_html(option["attrs"])}>'
                f"{escape(option['label'])}</option>"
                for option in options
            )
            if group_name:
                html.append("</optgroup>")
        html.append("</select>")
        return "\n".join(html)
    return None


class ListFormRenderer(DjangoTemplates):
    def render(
        self, template_name: str, context: dict[str, Any], request: HttpRequest | None = None
    ) -> str:
        widget = context.get("widget")
        html = _widget_html(template_name, widget) if widget is not None else None
        if html is None:
            return super().render(template_name, context, request)
        return mark_safe(html)  # every value in it is escaped


class ListFilterForm(forms.Form):
    default_renderer = ListFormRenderer()


def _readable(data: QueryDict | None) -> QueryDict | None:
    """The list's query as the filters read it: NULs dropped from every value, and an
    `include` the page never writes (an edited URL) left out.

    A NUL cannot be typed, PostgreSQL's text refuses it, and Django's form fields refuse the
    whole value: "?q=ab%00c" searched nothing and showed every license, as if no search had
    been asked. The hidden inputs (include, sort) show no error on the page, so a value they
    never hold reads as absent rather than invalidating the form (and with it the sort).
    """
    if data is None:
        return None
    readable = QueryDict(mutable=True)
    for name, values in data.lists():
        values = [value.replace("\x00", "") for value in values]
        if name == "include":
            values = [value for value in values if value == INCLUDE_ALL]
        readable.setlist(name, values)
    return readable


class CustomNumberField(forms.CharField):
    """A number field's filter input, read as a saved value is (custom_value_clean: a pt-BR
    decimal comma, the same refusals with the same messages) into the stored text it matches.
    Django's DecimalField refused "-3,5", which saving accepts, in every language."""

    def __init__(self, *args: Any, custom_field: CustomField, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.custom_field = custom_field

    def clean(self, value: Any) -> str:
        text = super().clean(value)
        return custom_value_clean(self.custom_field, text) if text else ""


class CustomNumberFilter(django_filters.CharFilter):
    field_class = CustomNumberField


class LicenseFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        label=_("Search"),
        method="filter_search",
        help_text=_("Key, serial number, host ID, contact or custom value."),
    )
    # Choices (the products and versions of the visible licenses) from one query, read when the
    # form is rendered or a value is checked: see _catalog.
    product = django_filters.ChoiceFilter(label=_("Product"), field_name="version__product")
    version = django_filters.ChoiceFilter(label=_("Version"), field_name="version")
    status = django_filters.ChoiceFilter(label=_("Status"), choices=License.Status.choices)
    maintenance = django_filters.ChoiceFilter(
        label=_("Maintenance"), choices=MAINTENANCE_CHOICES, method="filter_maintenance"
    )
    expiring_before = django_filters.DateFilter(
        label=_("Maintenance ends on or before"),
        field_name="maintenance_end",
        lookup_expr="lte",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    include = django_filters.ChoiceFilter(
        choices=[(INCLUDE_ALL, _("All statuses"))],
        method="filter_include",
        widget=forms.HiddenInput,
    )
    sort = django_filters.CharFilter(method="filter_sort", widget=forms.HiddenInput)

    class Meta:
        form = ListFilterForm

    def __init__(
        self,
        data: QueryDict | None = None,
        *args: Any,
        custom_fields: list[CustomField],
        organization: Organization | None,
        actor: User | AnonymousUser | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(_readable(data), *args, **kwargs)
        self.custom_fields = custom_fields
        self.organization = organization
        self.actor = actor
        # Plain functions, not bound methods: the form deep-copies its fields' choices, and a
        # bound method's copy deep-copies its instance (this filter set, its queryset, its
        # request data), a twelfth of the list page's time.
        self.filters["product"].extra["choices"] = lambda: self._product_choices()
        self.filters["version"].extra["choices"] = lambda: self._version_choices()
        for custom_field in custom_fields:
            self.filters[f"cf_{custom_field.pk}"] = self._custom_filter(custom_field)
        if not custom_fields:
            # No custom field to search in: the organization has none, or the person acting (a
            # partner without Manage data) may not read them.
            self.filters["q"].extra["help_text"] = _("Key, serial number, host ID or contact.")

    @cached_property
    def _catalog(self) -> list[tuple[int, int, str, str, str]]:
        """The versions of the visible licenses in the catalog's order, as (version id, product
        id, product name, product SKU, version) tuples: only what the choices show."""
        return list(
            ProductVersion.objects.filter(pk__in=self.queryset.values("version_id")).values_list(
                "pk", "product_id", "product__name", "product__sku", "version"
            )
        )

    def _product_choices(self) -> list[tuple[int, str]]:
        # As Product.__str__ reads.
        products = {(name, pk, sku) for _v, pk, name, sku, _version in self._catalog}
        return [(pk, f"{name} ({sku})") for name, pk, sku in sorted(products)]

    def _version_choices(self) -> list[tuple[int, str]]:
        # As ProductVersion.__str__ reads.
        return [(pk, f"{name} {version}") for pk, _p, name, _sku, version in self._catalog]

    @property
    def form(self) -> forms.Form:
        # The list renders this form by hand (not field by field through crispy, which was a
        # fifth of the page's time): the Bootstrap classes go on the widgets once, here.
        if not hasattr(self, "_form"):
            form = super().form
            for field in form.fields.values():
                widget = field.widget
                if isinstance(widget, forms.HiddenInput):
                    continue
                css = "form-select" if isinstance(widget, forms.Select) else "form-control"
                widget.attrs["class"] = css
            if form.is_bound and not form.is_valid():
                for name in form.errors:
                    if name in form.fields:
                        attrs = form.fields[name].widget.attrs
                        # A hidden input has no class and shows no error.
                        attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()
        return self._form

    def _custom_filter(self, custom_field: CustomField) -> django_filters.Filter:
        label = custom_field.name
        method = self._make_custom_method(custom_field)
        if custom_field.field_type == CustomField.Type.CHOICE:
            return django_filters.ChoiceFilter(
                label=label,
                method=method,
                choices=[(c, c) for c in custom_field.choice_list],
            )
        if custom_field.field_type == CustomField.Type.DATE:
            return django_filters.DateFilter(
                label=label, method=method, widget=forms.DateInput(attrs={"type": "date"})
            )
        if custom_field.field_type == CustomField.Type.NUMBER:
            return CustomNumberFilter(
                label=label,
                method=method,
                custom_field=custom_field,
                widget=forms.TextInput(attrs={"inputmode": "decimal"}),
            )
        return django_filters.CharFilter(label=label, method=method)

    @staticmethod
    def _make_custom_method(custom_field: CustomField) -> Any:
        def method(queryset: QuerySet[License], name: str, value: Any) -> QuerySet[License]:
            if value in (None, ""):
                return queryset
            values = CustomFieldValue.objects.filter(license=OuterRef("pk"), field=custom_field)
            if custom_field.field_type == CustomField.Type.TEXT:
                values = values.filter(value__icontains=str(value).strip())
            elif custom_field.field_type == CustomField.Type.NUMBER:
                values = values.filter(value=value)  # stored form: see CustomNumberField
            elif custom_field.field_type == CustomField.Type.DATE:
                values = values.filter(value=value.isoformat())
            else:
                values = values.filter(value=value)
            return queryset.filter(Exists(values))

        return method

    def filter_search(
        self, queryset: QuerySet[License], name: str, value: str
    ) -> QuerySet[License]:
        text = value.strip()
        if not text:
            return queryset
        bare = compact(text)
        # The purchase reference and the custom data are the owner's: searching them must not
        # tell a share recipient what they hold. Custom values are searched only in the acting
        # organization's own fields, the purchase reference only on its own licenses.
        owned = Q(owner=self.organization) if self.organization is not None else Q(pk__in=[])
        # Matches in other tables become id lists read first, so that every branch of the OR is
        # an indexed condition on the license row (a trigram index or an id lookup) and
        # PostgreSQL can combine them instead of testing each of the organization's rows.
        registrations = (
            SupportRegistration.objects.filter(
                self._registrations_in_reach(),
                Q(company__icontains=text)
                | Q(primary_name__icontains=text)
                | Q(primary_email__icontains=text)
                | Q(technical_name__icontains=text)
                | Q(technical_email__icontains=text),
            )
            .order_by()
            .values_list("pk", flat=True)
        )
        condition = (
            Q(key__icontains=text)
            | (Q(source_ref__icontains=text) & owned)
            | Q(host_id__icontains=text)
            | _ids_or_subquery("registration_id", registrations)
        )
        field_ids = [f.pk for f in self.custom_fields]
        if field_ids:
            own_values = CustomFieldValue.objects.filter(
                field_id__in=field_ids, value__icontains=text
            ).values_list("license_id", flat=True)
            condition |= _ids_or_subquery("pk", own_values)
        patterns = [text]
        if len(bare) >= 5 and bare.isalnum() and "-" not in text:
            # A key or serial typed without its dashes (or with spaces) still matches. Text typed
            # with dashes is searched as typed: "host-00042" is no key, and two more branches
            # (and a second pattern over every serial) made the search cost 1.6 x a page.
            grouped = "-".join(bare[i : i + 5] for i in range(0, len(bare), 5))
            condition |= Q(key__icontains=grouped) | (Q(source_ref__icontains=grouped) & owned)
            patterns.append(grouped)
        serial_ids = self._serial_lineage(patterns)
        if serial_ids:
            condition |= Q(pk__in=serial_ids)
        return queryset.filter(condition)

    def _registrations_in_reach(self) -> Q:
        """The support registrations a search may match: the acting organization's and those of
        the licenses shared with the actor (a registration belongs to its license's owner).

        Not every organization's: below ~8,000 rows in all PostgreSQL reads the whole table
        for the five substring tests (0.7 ms at 500 rows, 1.6 ms at 1,500, growing with every
        mint anywhere), where the acting organization's are an index lookup.
        """
        reach = Q(pk__in=[])
        if self.actor is not None and self.actor.is_authenticated:
            reach = Q(pk__in=active_shares(self.actor).values("license__registration_id"))
        if self.organization is not None:
            reach |= Q(organization=self.organization)
        return reach

    def _serial_lineage(self, patterns: list[str]) -> set[Any]:
        """Ids of the acting organization's licenses that a serial matching `patterns` touched:
        the license it created or renewed, and along upgrades the licenses before and after.

        A renewal serial does not change the license's source_ref, and an upgrade serial is the
        source_ref of the new license only: the serials' own record (SerialNumber.license, set
        on redemption) is what knows every one. Only owned licenses: serials are purchase
        references, the owner's (see filter_search).
        """
        if self.organization is None:
            return set()
        matches = Q()
        for pattern in patterns:
            matches |= Q(code__icontains=pattern)
        found = set(
            SerialNumber.objects.filter(matches, license__owner=self.organization)
            .order_by()
            .values_list("license_id", flat=True)
        )
        frontier = set(found)
        for _step in range(SERIAL_LINEAGE_STEPS):
            if not frontier:
                break
            related = License.objects.filter(
                Q(supersedes__in=frontier) | Q(superseded_by__in=frontier),
                owner=self.organization,
            ).values_list("pk", flat=True)
            frontier = set(related) - found
            found |= frontier
        return found

    def filter_include(
        self, queryset: QuerySet[License], name: str, value: str
    ) -> QuerySet[License]:
        return queryset  # read in filter_queryset, with the status filter

    def shows_all_statuses(self) -> bool:
        """Whether the list shows every status, not only the current licenses."""
        if not self.form.is_bound:
            return False
        self.form.is_valid()  # cleaned_data keeps the valid fields of an invalid form too
        data = getattr(self.form, "cleaned_data", {})
        return data.get("include") == INCLUDE_ALL or bool(data.get("status"))

    @property
    def qs(self) -> QuerySet[License]:
        if not hasattr(self, "_current_qs"):
            queryset = super().qs
            if not self.shows_all_statuses():
                queryset = queryset.filter(status__in=CURRENT_STATUSES)
            self._current_qs = queryset
        return self._current_qs

    def filter_maintenance(
        self, queryset: QuerySet[License], name: str, value: str
    ) -> QuerySet[License]:
        today = timezone.localdate()
        soon = today + timedelta(days=90)
        if value in {"expired", "expiring", "active"}:
            # As the badge says (License.maintenance_state): a superseded or revoked license's
            # maintenance is in no state, whatever its dates.
            queryset = queryset.filter(status=License.Status.ACTIVE)
        if value == "expired":
            return queryset.filter(maintenance_end__lt=today)
        if value == "expiring":
            return queryset.filter(maintenance_end__gte=today, maintenance_end__lte=soon)
        if value == "active":
            return queryset.filter(maintenance_end__gt=soon)
        return queryset

    def filter_sort(self, queryset: QuerySet[License], name: str, value: str) -> QuerySet[License]:
        return queryset  # applied last, in sorted_queryset, so that it follows every filter

    def sort_key(self) -> str:
        value = (self.form.cleaned_data.get("sort") if self.form.is_valid() else "") or ""
        bare = value.lstrip("-")
        custom_ids = {f"cf_{f.pk}" for f in self.custom_fields}
        if bare in SORTS or bare in custom_ids:
            return value
        return DEFAULT_SORT

    def sort_column(self) -> tuple[str | None, bool]:
        """The column sorted on (None for a custom field's value, which may be missing) and
        whether the order is descending."""
        sort = self.sort_key()
        return SORTS.get(sort.lstrip("-")), sort.startswith("-")

    def sorted_queryset(self) -> QuerySet[License]:
        """The filtered licenses in the requested order (a stable one: ties by id)."""
        queryset = self.qs
        sort = self.sort_key()
        descending = sort.startswith("-")
        bare = sort.lstrip("-")
        prefix = "-" if descending else ""
        if bare.startswith("cf_"):
            custom_field = next(f for f in self.custom_fields if f"cf_{f.pk}" == bare)
            queryset = queryset.annotate(sort_value=_custom_value(custom_field))
            # Licenses without a value after those with one, either way (PostgreSQL puts NULLs
            # first when descending, SQLite when ascending). These sorts page by number.
            value = F("sort_value")
            order = value.desc(nulls_last=True) if descending else value.asc(nulls_last=True)
            return queryset.order_by(order, f"{prefix}pk")
        return queryset.order_by(f"{prefix}{SORTS[bare]}", f"{prefix}pk")
