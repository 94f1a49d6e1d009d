"""Custom data: the organization's fields (settings), bulk edit and CSV upload with preview."""

from __future__ import annotations

import csv
import io
import secrets
from uuid import UUID

from django.contrib import messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal.http import PortalRequest, organization_required, post_only
from portal.policy import Action, require
from portal.services import audit_record

from ..forms import CsvUploadForm, CustomFieldForm, CustomValuesForm
from ..models import CustomField, CustomFieldValue, License
from ..selectors import custom_fields_of, licenses_visible_to
from ..services import (
    csv_safe,
    custom_values_csv_apply,
    custom_values_csv_preview,
    custom_values_set,
)
from .licenses import BOM, SelectionTooLarge, bulk_selection

SESSION_CSV_PREVIEW = "licensing:custom-csv-preview"


@organization_required(action=Action.VIEW_CUSTOM_FIELDS)
def custom_fields_settings(request: PortalRequest) -> HttpResponse:
    fields = custom_fields_of(request.organization)
    form = CustomFieldForm(request.POST or None, organization=request.organization)
    if request.method == "POST":
        require(request, Action.DEFINE_CUSTOM_FIELDS)
        if form.is_valid():
            with transaction.atomic():
                custom_field = form.save(commit=False)
                custom_field.organization = request.organization
                custom_field.save()
                audit_record(
                    action="custom_field.created",
                    actor=request.user,
                    organization=request.organization,
                    obj=custom_field,
                    details={"name": custom_field.name, "type": custom_field.field_type},
                )
            messages.success(request, _("Field %(name)s added.") % {"name": custom_field.name})
            return redirect("custom-fields")
    return render(request, "licensing/custom_fields.html", {"fields": fields, "form": form})


@organization_required(action=Action.DEFINE_CUSTOM_FIELDS)
def custom_field_edit(request: PortalRequest, pk: int) -> HttpResponse:
    custom_field = get_object_or_404(CustomField, pk=pk, organization=request.organization)
    if request.method == "POST" and "delete" in request.POST:
        with transaction.atomic():
            audit_record(
                action="custom_field.deleted",
                actor=request.user,
                organization=request.organization,
                obj=custom_field,
                details={"name": custom_field.name},
            )
            custom_field.delete()
        messages.success(request, _("Field %(name)s deleted.") % {"name": custom_field.name})
        return redirect("custom-fields")
    form = CustomFieldForm(
        request.POST or None, instance=custom_field, organization=request.organization
    )
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.save()
            audit_record(
                action="custom_field.changed",
                actor=request.user,
                organization=request.organization,
                obj=custom_field,
                details={"name": custom_field.name, "type": custom_field.field_type},
            )
        messages.success(request, _("Field saved."))
        return redirect("custom-fields")
    return render(
        request, "licensing/custom_field_edit.html", {"form": form, "custom_field": custom_field}
    )


BULK_SHOWN = 50  # licenses named on the bulk edit page; the rest are counted


@post_only(back="license-list")
@organization_required(action=Action.BULK_CUSTOM_DATA)
def custom_values_bulk(request: PortalRequest) -> HttpResponse:
    try:
        licenses = bulk_selection(request)
    except SelectionTooLarge as exc:
        messages.error(request, str(exc))
        return redirect("license-list")
    if not licenses:
        messages.error(request, _("Select at least one of your organization's licenses."))
        return redirect("license-list")
    fields = custom_fields_of(request.organization)
    if not fields:
        messages.info(
            request,
            _(
                "Your organization has no custom fields yet. An administrator "
                "can add them under Custom fields."
            ),
        )
        return redirect("license-list")
    form = CustomValuesForm(
        request.POST if "apply" in request.POST else None, custom_fields=fields, bulk=True
    )
    if "apply" in request.POST and form.is_valid():
        changed = custom_values_set(
            licenses=licenses, values=form.values, actor=request.user, fields=fields
        )
        messages.success(
            request,
            ngettext(
                "Custom data changed on %(count)d license.",
                "Custom data changed on %(count)d licenses.",
                changed,
            )
            % {"count": changed},
        )
        kept = sum(license.status != License.Status.ACTIVE for license in licenses)
        if kept:
            messages.warning(
                request,
                ngettext(
                    "%(count)d selected license is superseded or revoked: it is kept as "
                    "history and was not changed.",
                    "%(count)d selected licenses are superseded or revoked: they are kept as "
                    "history and were not changed.",
                    kept,
                )
                % {"count": kept},
            )
        return redirect("license-list")
    return render(
        request,
        "licensing/custom_values_bulk.html",
        {
            # A POST-only address: the switchers at the top return to the list (base.html).
            "page_url": _list_url(request.POST.get("matching", "")),
            "form": form,
            "licenses": licenses,
            "shown": licenses[:BULK_SHOWN],
            # With "all matching" the next step resolves the filters again rather than carry
            # thousands of ids through the form.
            "all_matching": bool(request.POST.get("all_matching")),
            "matching": request.POST.get("matching", ""),
        },
    )


def _list_url(query: str) -> str:
    """The license list, filtered as the bulk action's `matching` query string says."""
    filters = QueryDict(query).urlencode()
    return reverse("license-list") + (f"?{filters}" if filters else "")


@organization_required(action=Action.BULK_CUSTOM_DATA)
def custom_values_csv(request: PortalRequest) -> HttpResponse:
    fields = custom_fields_of(request.organization)
    manageable = licenses_visible_to(actor=request.user, organization=request.organization).filter(
        owner=request.organization
    )
    template = request.GET.get("template")
    if request.method == "GET" and template in ("licenses", "empty") and fields:
        return _csv_template(fields, manageable if template == "licenses" else None)
    form = CsvUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and "confirm" in request.POST:
        stored = request.session.get(SESSION_CSV_PREVIEW)
        # A preview stored before its rows carried their changes is read as expired.
        if not stored or any("changes" not in row for row in stored.get("rows", [])):
            messages.error(request, _("The preview expired. Upload the file again."))
            return redirect("custom-values-csv")
        if request.POST.get("preview", "") != stored.get("token"):
            # The session keeps the latest upload's preview only: this page showed an earlier
            # one (another tab uploaded since). Applying would write the other file's changes.
            messages.error(
                request,
                _(
                    "A later upload replaced this preview. Upload this file again to check "
                    "and apply it."
                ),
            )
            return redirect("custom-values-csv")
        request.session.pop(SESSION_CSV_PREVIEW, None)
        applied = custom_values_csv_apply(
            rows=stored["rows"], licenses=manageable, fields=fields, actor=request.user
        )
        messages.success(
            request,
            ngettext(
                "Custom data changed on %(count)d license.",
                "Custom data changed on %(count)d licenses.",
                applied.changed,
            )
            % {"count": applied.changed},
        )
        if applied.stale:
            messages.warning(
                request,
                ngettext(
                    "%(count)d value was changed by someone else after the preview and was "
                    "left as it is now. Upload the file again to check it.",
                    "%(count)d values were changed by someone else after the preview and were "
                    "left as they are now. Upload the file again to check them.",
                    applied.stale,
                )
                % {"count": applied.stale},
            )
        return redirect("license-list")
    preview = None
    preview_token = ""
    if request.method == "POST" and form.is_valid():
        preview = custom_values_csv_preview(
            upload=form.cleaned_data["file"], licenses=manageable, fields=fields
        )
        if preview.error:
            form.add_error("file", preview.error)
            preview = None
        else:
            preview_token = secrets.token_urlsafe(16)
            request.session[SESSION_CSV_PREVIEW] = {
                "token": preview_token,
                # What the page shows: each change with the value it replaces, not the
                # row's other values (writing those would undo edits made since).
                "rows": [
                    {
                        "license": row.license_id,
                        "changes": {
                            str(field_id): {"from": old, "to": row.values[field_id]}
                            for field_id, old in row.replaces.items()
                        },
                    }
                    for row in preview.changing
                ],
            }
    return render(
        request,
        "licensing/custom_values_csv.html",
        {"form": form, "preview": preview, "preview_token": preview_token, "fields": fields},
    )


def _csv_template(fields: list[CustomField], licenses: QuerySet[License] | None) -> HttpResponse:
    """The upload's own format: key and one column per field, with the licenses' current values
    (or only the header), so what is downloaded can be filled in and uploaded as it is."""
    buffer = io.StringIO()
    buffer.write(BOM)  # for Excel, as the list's export
    writer = csv.writer(buffer)
    # Field names are the organization's own text: guarded like the values.
    writer.writerow(["key", *[_csv_safe(f.name) for f in fields]])
    if licenses is not None:
        rows = list(licenses.order_by("issued_at").values_list("pk", "key"))
        values: dict[tuple[UUID, int], str] = {
            (license_id, field_id): value
            for license_id, field_id, value in CustomFieldValue.objects.filter(
                license__in=licenses.values("pk"), field__in=fields
            ).values_list("license_id", "field_id", "value")
        }
        for pk, key in rows:
            writer.writerow([key, *[_csv_safe(values.get((pk, f.pk), "")) for f in fields]])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    name = "custom-data-template.csv" if licenses is None else "custom-data.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _csv_safe(value: str) -> str:
    # As the list's export: a cell a spreadsheet would run as a formula gets a guard quote,
    # which the upload takes off again.
    return str(csv_safe(value))
