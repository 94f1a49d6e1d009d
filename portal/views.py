from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from .forms import InvitationForm, MemberRoleForm, OrganizationForm
from .http import AuthenticatedHttpRequest, PortalRequest, organization_required
from .models import Invitation, Membership, Organization
from .requestcontext import request_id
from .selectors import (
    SESSION_ORGANIZATION_KEY,
    acting_membership,
    memberships_of,
    open_invitations,
    organization_members,
)
from .services import (
    PortalError,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_update,
    organization_create,
)


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "portal/home.html")


# The portal's functions, in the order of the original Licensing Portal page. Apps are named
# by URL only, so that the core never imports them.
FUNCTIONS = [
    {
        "title": gettext_lazy("Get a key"),
        "text": gettext_lazy(
            "Register a new purchase, a paid upgrade or a maintenance renewal with the serial "
            "number from your license certificate, and receive your license key and license file."
        ),
        "url": "get-a-key",
        "button": gettext_lazy("Get a license key"),
    },
    {
        "title": gettext_lazy("Version upgrade"),
        "text": gettext_lazy(
            "Upgrade licenses with current maintenance to a newly released version at no cost, "
            "with the notification ID from the upgrade notice."
        ),
        "url": "upgrade",
        "button": gettext_lazy("Version upgrade"),
        "link_url": "upgrades-pending",
        "link": gettext_lazy("I don't have a notification ID"),
    },
    {
        "title": gettext_lazy("Manage my licenses"),
        "text": gettext_lazy(
            "View and manage your current licenses, share them with other users, keep your own "
            "custom data on each license, renew maintenance and move licenses to new hosts."
        ),
        "url": "license-list",
        "button": gettext_lazy("My licenses"),
    },
    {
        "title": gettext_lazy("Voucher center"),
        "text": gettext_lazy(
            "Convert the voucher codes that came with your hardware into licenses, one or a "
            "thousand at a time."
        ),
        "url": "voucher-center",
        "button": gettext_lazy("Convert vouchers"),
        "link_url": "voucher-batches",
        "link": gettext_lazy("Your voucher batches"),
        "link_for_partners_only": True,
    },
    {
        "title": gettext_lazy("Organization"),
        "text": gettext_lazy("See who works in your organization and invite colleagues."),
        "url": "members",
        "button": gettext_lazy("Manage members"),
    },
]


@organization_required
def dashboard(request: PortalRequest) -> HttpResponse:
    is_partner = request.organization.kind == Organization.Kind.PARTNER
    functions = [
        {
            **function,
            "show_link": "link_url" in function
            and (is_partner or not function.get("link_for_partners_only")),
        }
        for function in FUNCTIONS
    ]
    return render(request, "portal/dashboard.html", {"functions": functions})


@login_required
def organization_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if acting_membership(request) is not None and "new" not in request.GET:
        return redirect("dashboard")
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = organization_create(admin=request.user, **form.cleaned_data)
        request.session[SESSION_ORGANIZATION_KEY] = organization.pk
        messages.success(request, _("Organization %(name)s created.") % {"name": organization.name})
        return redirect("dashboard")
    return render(request, "portal/organization_create.html", {"form": form})


@require_POST
@login_required
def organization_switch(request: AuthenticatedHttpRequest) -> HttpResponse:
    wanted = request.POST.get("organization", "")
    for membership in memberships_of(request.user):
        if str(membership.organization_id) == wanted:
            request.session[SESSION_ORGANIZATION_KEY] = membership.organization_id
            messages.info(
                request,
                _("You are now working in %(name)s.") % {"name": membership.organization.name},
            )
            break
    else:
        messages.error(request, _("You are not a member of that organization."))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "dashboard"
    return redirect(target)


@organization_required
def members(request: PortalRequest) -> HttpResponse:
    organization = request.organization
    invite_form = InvitationForm(request.POST or None)
    if request.method == "POST":
        if not request.membership.is_admin:
            raise Http404
        if invite_form.is_valid():
            try:
                invitation_create(
                    organization=organization, invited_by=request.user, **invite_form.cleaned_data
                )
            except PortalError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request,
                    _("Invitation sent to %(email)s.")
                    % {"email": invite_form.cleaned_data["email"]},
                )
                return redirect("members")
    return render(
        request,
        "portal/members.html",
        {
            "organization": organization,
            "members": organization_members(actor=request.user, organization=organization),
            "invitations": open_invitations(actor=request.user, organization=organization),
            "invite_form": invite_form,
            "role_choices": Membership.Role.choices,
        },
    )


@require_POST
@organization_required
def member_update(request: PortalRequest, pk: int) -> HttpResponse:
    membership = get_object_or_404(
        organization_members(actor=request.user, organization=request.organization), pk=pk
    )
    form = MemberRoleForm(request.POST)
    try:
        if "remove" in request.POST:
            membership_update(membership=membership, actor=request.user, remove=True)
            messages.success(
                request, _("%(email)s was removed.") % {"email": membership.user.email}
            )
        elif form.is_valid():
            membership_update(
                membership=membership, actor=request.user, role=form.cleaned_data["role"]
            )
            messages.success(request, _("Role updated."))
    except PortalError as exc:
        messages.error(request, str(exc))
    return redirect("members")


@require_POST
@organization_required
def invitation_revoke_view(request: PortalRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(
        open_invitations(actor=request.user, organization=request.organization), pk=pk
    )
    invitation_revoke(invitation=invitation, actor=request.user)
    messages.success(request, _("Invitation withdrawn."))
    return redirect("members")


def invitation_landing(request: HttpRequest, token: str) -> HttpResponse:
    invitation = Invitation.objects.select_related("organization").filter(token=token).first()
    if invitation is None or not invitation.is_open(now=timezone.now()):
        request.session.pop("portal:invitation", None)
        return render(request, "portal/invitation_invalid.html", status=404)
    if not request.user.is_authenticated:
        # Remembered through sign-up or login; the adapter brings the user back here.
        request.session["portal:invitation"] = token
        return render(request, "portal/invitation.html", {"invitation": invitation})
    if request.method != "POST":
        return render(request, "portal/invitation.html", {"invitation": invitation})
    try:
        membership = invitation_accept(invitation=invitation, user=request.user)  # type: ignore[arg-type]
    except PortalError as exc:
        messages.error(request, str(exc))
        return redirect("home")
    request.session.pop("portal:invitation", None)
    request.session[SESSION_ORGANIZATION_KEY] = membership.organization_id
    messages.success(request, _("You joined %(name)s.") % {"name": membership.organization.name})
    return redirect("dashboard")


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, with the request's ID so that support can find its log lines.

    Rendered without context processors: whatever failed (the database, say) must not fail the
    error page too.
    """
    template = loader.get_template("500.html")
    response = HttpResponseServerError(template.render({"request_id": request_id.get()}))
    response["Cache-Control"] = "no-store"
    return response
