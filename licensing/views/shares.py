"""Sharing licenses with people, from a license's page or a selection on the list."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from portal.forms import SIGNUP_VIA_SHARE, signup_remember
from portal.http import PortalRequest, confirmation, organization_required
from portal.policy import Action

from ..forms import ShareForm
from ..models import LicenseShare
from ..services import LicensingError, license_share, share_accept, share_revoke
from .licenses import SelectionTooLarge, bulk_selection

SESSION_SHARE_TOKEN = "licensing:share-token"  # noqa: S105 - a session key, not a secret


@require_POST
@organization_required(action=Action.SHARE_LICENSES)
def share_create(request: PortalRequest) -> HttpResponse:
    try:
        licenses = bulk_selection(request)
    except SelectionTooLarge as exc:
        messages.error(request, str(exc))
        return redirect("license-list")
    back = request.POST.get("back") or "license-list"
    if len(licenses) == 1 and back == "license-detail":
        target = redirect("license-detail", pk=licenses[0].pk)
    else:
        target = redirect("license-list")
    form = ShareForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(str(e) for e in errors))
        return target
    try:
        result = license_share(licenses=licenses, actor=request.user, **form.cleaned_data)
    except LicensingError as exc:
        messages.error(request, str(exc))
        return target
    if result.skipped:
        messages.warning(
            request,
            ngettext(
                "%(count)d selected license is superseded or revoked: it is kept as history "
                "and was not shared.",
                "%(count)d selected licenses are superseded or revoked: they are kept as "
                "history and were not shared.",
                result.skipped,
            )
            % {"count": result.skipped},
        )
    count = len(result.created) + len(result.updated)
    if count:
        messages.success(
            request,
            ngettext(
                "Shared %(count)d license with %(email)s.",
                "Shared %(count)d licenses with %(email)s.",
                count,
            )
            % {"count": count, "email": form.cleaned_data["email"]},
        )
    else:
        messages.info(
            request,
            _("Already shared with %(email)s with that access.")
            % {"email": form.cleaned_data["email"]},
        )
    return target


@require_POST
@organization_required(action=Action.SHARE_LICENSES)
def share_revoke_view(request: PortalRequest, pk: int) -> HttpResponse:
    # Revoked shares too: revoking one again (a double click, a page from before) is told so
    # on the license's page, not a 404; shares of other organizations stay a 404.
    share = get_object_or_404(
        LicenseShare.objects.select_related("license__owner"),
        pk=pk,
        license__owner=request.organization,
    )
    if share.revoked_at is None and (
        asked := confirmation(
            request,
            title=_("Stop sharing this license with %(email)s?") % {"email": share.email},
            consequences=[
                _(
                    "%(email)s loses access to this license at once. To give it back, share it "
                    "again."
                )
                % {"email": share.email}
            ],
            action=_("Revoke"),
            cancel_url=reverse("license-detail", kwargs={"pk": share.license_id}),
        )
    ):
        return asked
    try:
        share_revoke(share=share, actor=request.user)
    except LicensingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("%(email)s no longer has access to this license.") % {"email": share.email}
        )
    return redirect("license-detail", pk=share.license_id)


def share_landing(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link for someone without an account: sign up or log in, then see them."""
    share = (
        LicenseShare.objects.filter(token=token, revoked_at__isnull=True)
        .select_related("license__owner")
        .first()
    )
    if share is None:
        return render(request, "licensing/share_invalid.html", status=404)
    if not request.user.is_authenticated:
        request.session[SESSION_SHARE_TOKEN] = token
        signup_remember(request, email=share.email, via=SIGNUP_VIA_SHARE)
        return render(request, "licensing/share_landing.html", {"share": share})
    return _accept(request, token)


@login_required
def _accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        count = share_accept(token=token, user=request.user)  # type: ignore[arg-type]
    except LicensingError as exc:
        messages.error(request, str(exc))
        return redirect("home")
    request.session.pop(SESSION_SHARE_TOKEN, None)
    if count:
        messages.success(
            request,
            ngettext(
                "%(count)d shared license was added to your list.",
                "%(count)d shared licenses were added to your list.",
                count,
            )
            % {"count": count},
        )
    return redirect("license-list")
