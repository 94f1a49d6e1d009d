from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from licensing.models import License
from licensing.selectors import licenses_visible_to
from portal.http import PortalRequest, organization_required
from portal.policy import Action

from .emails import (
    ZIP_MIMETYPE,
    ZIP_NAME,
    conversion_email_recipients,
    files_attached,
    licenses_zip,
)
from .models import VoucherConversion
from .selectors import (
    batch_for,
    batch_redeemers,
    batches_visible_to,
    conversion_entries,
    conversion_for,
    license_codes,
    reason_message,
    refusal_params_shown,
    slices,
)
from .wizard import steps_context

# Without JavaScript, the progress page reloads itself this often (the HTTP Refresh header).
PROGRESS_REFRESH_SECONDS = 2
# Licenses per page of a conversion's result: a conversion may issue 10,000; the zip has them all.
RESULT_PAGE_SIZE = 100


@require_safe
@organization_required(action=(Action.OBTAIN_KEYS, Action.VIEW_LICENSES))
def voucher_conversion(request: PortalRequest, pk: str) -> HttpResponse:
    """Step 4: the licenses and the refused codes, or the progress while the task runs."""
    conversion = conversion_for(actor=request.user, organization=request.organization, pk=pk)
    if not conversion.is_finished:
        response = render(
            request,
            "vouchers/conversion_progress.html",
            {
                "conversion": conversion,
                "refresh_seconds": PROGRESS_REFRESH_SECONDS,
                **steps_context("result"),
            },
        )
        response["Refresh"] = str(PROGRESS_REFRESH_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
    page = Paginator(conversion_entries(conversion), RESULT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # The codes not converted are paged too, on their own: 10,000 mistyped codes are 10,000 rows.
    refused = Paginator(conversion.refused, RESULT_PAGE_SIZE).get_page(
        request.GET.get("refused_page")
    )
    entries = list(page.object_list)
    codes = license_codes([entry.license_id for entry in entries])
    for entry in entries:
        entry.codes = codes[entry.license_id]  # type: ignore[attr-defined]
    return render(
        request,
        "vouchers/conversion_result.html",
        {
            "conversion": conversion,
            "page": page,
            "entries": entries,
            "license_count": page.paginator.count,
            "files_emailed": files_attached(page.paginator.count),
            "refused": _refused_rows(list(refused.object_list), request=request),
            "refused_page": refused,
            "refused_count": refused.paginator.count,
            # Each list's page links keep the other list's page.
            "licenses_query": _page_query("refused_page", refused.number),
            "refused_query": _page_query("page", page.number),
            "recipients": _recipients(conversion, entries),
            "converted_count": conversion.converted,
            **steps_context("result"),
        },
    )


def _page_query(param: str, number: int) -> str:
    return urlencode({param: number}) if number > 1 else ""


def _refused_rows(
    items: Sequence[dict[str, Any]], *, request: PortalRequest
) -> list[dict[str, Any]]:
    # Keys are masked again for the reader: whoever may open the conversion but not read a key
    # (its partner submitter), also in results stored before they were masked when planned.
    shown = refusal_params_shown(
        [(item["reason"], item.get("params") or {}) for item in items],
        actor=request.user,
        organization=request.organization,
    )
    return [
        {
            "code": item["code"],
            "reason": item["reason"],
            "message": reason_message(item["reason"], params),
        }
        for item, params in zip(items, shown, strict=True)
    ]


def _recipients(conversion: VoucherConversion, entries: list[Any]) -> list[str]:
    """Who the license email went to: licensing's rule, applied to the conversion's licenses."""
    if not entries:
        return []
    license = (
        License.objects.select_related("registration", "owner")
        .filter(pk=entries[0].license_id)
        .first()
    )
    return conversion_email_recipients(conversion, license) if license else []


@require_safe
@organization_required(action=(Action.OBTAIN_KEYS, Action.VIEW_LICENSES))
def voucher_conversion_zip(request: PortalRequest, pk: str) -> HttpResponse:
    """Every license file of a conversion, freshly signed, in one zip."""
    conversion = conversion_for(actor=request.user, organization=request.organization, pk=pk)
    ids = [str(pk) for pk in conversion_entries(conversion).values_list("license_id", flat=True)]
    visible = licenses_visible_to(actor=request.user, organization=request.organization)
    found = {}
    for part in slices(ids):
        found.update({str(lic.pk): lic for lic in visible.filter(pk__in=part)})
    licenses = [found[i] for i in ids if i in found]
    if not licenses:
        raise Http404("No licenses.")
    response = HttpResponse(licenses_zip(licenses), content_type=ZIP_MIMETYPE)
    response["Content-Disposition"] = f'attachment; filename="{ZIP_NAME}"'
    response["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------------------------
# OEM partners


@require_safe
@organization_required(action=Action.VIEW_LICENSES)
def voucher_batches(request: PortalRequest) -> HttpResponse:
    """An OEM partner's voucher batches and how many were converted, are open or expired."""
    if request.organization.kind != request.organization.Kind.PARTNER:
        raise Http404("Only partner organizations have voucher batches.")
    batches = batches_visible_to(
        actor=request.user, organization=request.organization, today=timezone.localdate()
    )
    return render(request, "vouchers/batches.html", {"batches": batches})


@require_safe
@organization_required(action=Action.VIEW_LICENSES)
def voucher_batch(request: PortalRequest, pk: int) -> HttpResponse:
    """One batch: its counts and the names of the organizations that converted its vouchers."""
    batch = batch_for(
        actor=request.user, organization=request.organization, pk=pk, today=timezone.localdate()
    )
    return render(
        request,
        "vouchers/batch_detail.html",
        {"batch": batch, "redeemers": batch_redeemers(batch=batch)},
    )
