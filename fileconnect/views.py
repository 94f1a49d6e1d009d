from __future__ import annotations

from typing import Any
from uuid import UUID

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from licensing.signing import published_keys
from portal.http import PortalRequest, organization_required
from portal.policy import Action, allows

from .delivery import download_response
from .forms import SerialAccessForm
from .links import LINK_LIFETIME, LinkRefused, download_url, link_claims
from .models import ReleaseFile
from .selectors import (
    SESSION_SERIALS_KEY,
    SESSION_SERIALS_MAX,
    Basis,
    LicenseNotActive,
    Offer,
    basis_for_file,
    download_log,
    entitled_versions,
    license_basis,
    licenses_for_downloads,
    release_file_for,
    serial_basis,
    unlocked_serial_ids,
)
from .verification import verify_commands

LICENSES_PER_PAGE = 25
EVENTS_PER_PAGE = 50


@require_http_methods(["GET", "HEAD", "POST"])
@organization_required(action=Action.DOWNLOAD_SOFTWARE)
def fileconnect_home(request: PortalRequest) -> HttpResponse:
    """The two ways in: one of the visible licenses, or a serial number."""
    form = SerialAccessForm(
        request.POST if request.method == "POST" else None,
        request=request,
        organization=request.organization,
    )
    if request.method == "POST" and form.is_valid():
        assert form.serial_number is not None
        _remember_serial(request, form.serial_number.pk)
        return redirect("fileconnect-serial", pk=form.serial_number.pk)
    licenses = Paginator(
        licenses_for_downloads(actor=request.user, organization=request.organization),
        LICENSES_PER_PAGE,
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "fileconnect/home.html",
        {
            "form": form,
            "licenses": licenses,
            "can_view_log": allows(request, Action.VIEW_DOWNLOAD_LOG),
        },
    )


def _remember_serial(request: PortalRequest, pk: int) -> None:
    unlocked = [value for value in unlocked_serial_ids(request.session) if value != pk]
    request.session[SESSION_SERIALS_KEY] = [pk, *unlocked][:SESSION_SERIALS_MAX]


@require_safe
@organization_required(action=Action.DOWNLOAD_SOFTWARE)
def license_downloads(request: PortalRequest, pk: UUID) -> HttpResponse:
    try:
        basis = license_basis(actor=request.user, organization=request.organization, pk=pk)
    except LicenseNotActive as exc:
        # Gone for good: its successors, if any, entitle instead (the page links to them).
        return render(
            request,
            "fileconnect/license_not_active.html",
            {"license": exc.license, "successors": exc.successors},
            status=410,
        )
    return _entitled_list(request, basis)


@require_safe
@organization_required(action=Action.DOWNLOAD_SOFTWARE)
def serial_downloads(request: PortalRequest, pk: int) -> HttpResponse:
    basis = serial_basis(
        organization=request.organization,
        pk=pk,
        unlocked=unlocked_serial_ids(request.session),
        today=timezone.localdate(),
    )
    return _entitled_list(request, basis)


def _entitled_list(request: PortalRequest, basis: Basis) -> HttpResponse:
    versions = entitled_versions(basis, today=timezone.localdate())
    # Each file is checked with the key that signed it: a rotation leaves older files signed
    # with a retired key, which the portal keeps publishing.
    pems = {key.key_id: key.pem for key in published_keys()}
    for group in versions:
        if not group.entitlement.entitled:
            continue
        for platform in group.platforms:
            platform.offers = [
                Offer(
                    file=release_file,
                    download_url=download_url(
                        user_id=request.user.pk, file_id=release_file.pk, basis=basis.ref
                    ),
                    verify=verify_commands(release_file, public_key_pems=pems),
                )
                for release_file in platform.files
            ]
    return render(
        request,
        "fileconnect/downloads.html",
        {
            "basis": basis,
            "license": basis.license,
            "serial": basis.serial,
            "versions": versions,
            "link_minutes": int(LINK_LIFETIME.total_seconds() // 60),
        },
    )


@require_safe
@organization_required(action=Action.DOWNLOAD_SOFTWARE)
def file_download(request: PortalRequest, pk: int, token: str) -> HttpResponseBase:
    """A signed link: the file if it is the user's and still entitled, else 403 or 404."""
    release_file = release_file_for(pk=pk)
    refusal: LinkRefused | None = None
    try:
        claims = link_claims(token=token, file_id=release_file.pk, user_id=request.user.pk)
        prefer = claims.basis
    except LinkRefused as exc:
        refusal = exc
        prefer = exc.claims.basis if exc.claims is not None else ""
    unavailable = _unavailable(release_file)
    if unavailable is not None:
        # Staff withdrew the file or dated it ahead after this link was made. Only the user the
        # portal made the link for learns so; anyone else gets the 404 of an unknown file.
        if refusal is not None and refusal.reason != LinkRefused.EXPIRED:
            raise Http404("No such file.")
        template, status = unavailable
        return render(request, template, {"file": release_file}, status=status)
    basis = _basis(request, release_file, prefer)
    if basis is None:
        raise Http404("No such file.")  # another organization's file, or no longer entitled
    if refusal is not None:
        return render(
            request,
            "fileconnect/link_refused.html",
            {"file": release_file, "reason": refusal.reason, "basis_ref": prefer},
            status=403,
        )
    return download_response(
        request,
        actor=request.user,
        organization=request.organization,
        file=release_file,
        basis=basis,
    )


@require_POST
@organization_required(action=Action.DOWNLOAD_SOFTWARE)
def file_link(request: PortalRequest, pk: int) -> HttpResponse:
    """A fresh link for a user still entitled to the file (from the refused-link page)."""
    release_file = release_file_for(pk=pk)
    basis = _basis(request, release_file, request.POST.get("basis", ""))
    if basis is None:
        raise Http404("No such file.")
    return redirect(download_url(user_id=request.user.pk, file_id=release_file.pk, basis=basis.ref))


def _unavailable(release_file: ReleaseFile) -> tuple[str, int] | None:
    """The page (and status) saying why a file the portal once offered is not served now."""
    if release_file.is_withdrawn:
        return "fileconnect/withdrawn.html", 410
    if not release_file.release.is_released(today=timezone.localdate()):
        return "fileconnect/not_released.html", 404
    return None


def _basis(request: PortalRequest, release_file: ReleaseFile, prefer: str) -> Basis | None:
    return basis_for_file(
        actor=request.user,
        organization=request.organization,
        file=release_file,
        unlocked=unlocked_serial_ids(request.session),
        today=timezone.localdate(),
        prefer=prefer,
    )


@require_safe
@organization_required(action=Action.VIEW_DOWNLOAD_LOG)
def download_log_view(request: PortalRequest) -> HttpResponse:
    """The organization's downloads, for its administrators."""
    events = Paginator(
        download_log(actor=request.user, organization=request.organization), EVENTS_PER_PAGE
    ).get_page(request.GET.get("page"))
    context: dict[str, Any] = {"events": events}
    return render(request, "fileconnect/download_log.html", context)
