from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from portal.http import PortalRequest, organization_required
from portal.policy import Action, allows

from ..models import License
from ..selectors import last_renewal, license_for, owned_license_for, related_licenses
from ..services import (
    LICENSE_FILE_MIMETYPE,
    license_email_recipients,
    license_file_refusal,
    license_file_text,
)
from ..signing import PublishedKey, published_keys


@organization_required(action=(Action.VIEW_LICENSES, Action.VIEW_OWN_RESULTS))
def get_a_key_result(request: PortalRequest, pk: str) -> HttpResponse:
    # The owner's page: it names whom the key was emailed to. A share recipient has the
    # license's own page instead.
    license = owned_license_for(actor=request.user, organization=request.organization, pk=pk)
    # Usually the person looking obtained it: the request's user, not a second read of it.
    issued_by = request.user if license.issued_by_id == request.user.pk else license.issued_by
    # A renewal keeps the license: its email went to whoever renewed it (and, for a partner,
    # to the customer's administrators), not to whoever obtained the license first.
    renewal = last_renewal(license)
    if renewal is not None:
        recipients = license_email_recipients(
            license,
            renewal.actor,
            partner_acting=renewal.acting_for_id == license.owner_id,
        )
    else:
        recipients = license_email_recipients(license, issued_by)
    return render(
        request,
        "licensing/get_a_key_result.html",
        {
            "license": license,
            "supersedes": related_licenses(
                actor=request.user,
                organization=request.organization,
                license=license,
                superseded_by=False,
            ).supersedes,
            "recipients": recipients,
            "maintenance_state": license.maintenance_state(today=timezone.localdate()),
            # Where the software itself is, for whoever may download it (not a partner that
            # may only obtain keys).
            "can_download": allows(request, Action.DOWNLOAD_SOFTWARE),
        },
    )


@require_safe
@organization_required(action=(Action.VIEW_LICENSES, Action.VIEW_OWN_RESULTS))
def license_file_download(request: PortalRequest, pk: str) -> HttpResponse:
    license = license_for(actor=request.user, organization=request.organization, pk=pk)
    refusal = license_file_refusal(license)
    if refusal:
        # Gone for good, as its software is (FileConnect): the page says why and links the
        # licenses that replaced it, those the actor may open, whose files are current.
        successors = related_licenses(
            actor=request.user, organization=request.organization, license=license
        ).successors
        return render(
            request,
            "licensing/license_file_refused.html",
            {
                "license": license,
                "refusal": refusal,
                "successors": [s for s in successors if s.status == License.Status.ACTIVE],
            },
            status=410,
        )
    response = HttpResponse(license_file_text(license), content_type=LICENSE_FILE_MIMETYPE)
    response["Content-Disposition"] = f'attachment; filename="{license.file_name}"'
    response["Cache-Control"] = "no-store"
    return response


def _keys_asked(request: HttpRequest) -> tuple[list[PublishedKey], str]:
    """The published keys, or the one `?kid=` names; with a message when it names none."""
    keys = published_keys()
    kid = request.GET.get("kid", "").strip().lower()
    if not kid:
        return keys, ""
    chosen = [key for key in keys if key.key_id == kid]
    if chosen:
        return chosen, ""
    return [], _(
        "No signing key with ID %(kid)s is published here. Key IDs are 16 hexadecimal "
        "characters: copy the one the license file (meta.keyId) or the download names."
    ) % {"kid": kid[:40]}


@require_safe
def signing_key_page(request: HttpRequest) -> HttpResponse:
    # Current key first, then the retired ones: files signed before a rotation still verify.
    keys, error = _keys_asked(request)
    return render(
        request,
        "licensing/signing_key.html",
        {"keys": keys, "error": error, "filtered": "kid" in request.GET},
        status=404 if error else 200,
    )


@require_safe
@cache_control(public=True, max_age=3600)
def signing_key_well_known(request: HttpRequest) -> JsonResponse:
    # The current key stays first, as the only entry used to be; `status` and `?kid=` let a
    # verifier pick the key a file names.
    keys, error = _keys_asked(request)
    body: dict[str, object] = {
        "keys": [
            {
                "kid": key.key_id,
                "alg": "aes-256-gcm+ed25519",
                "kty": "OKP",
                "crv": "Ed25519",
                "hex": key.hex,
                "pem": key.pem,
                "status": "current" if key.current else "retired",
            }
            for key in keys
        ]
    }
    if error:
        body["error"] = error
    return JsonResponse(body, status=404 if error else 200)
