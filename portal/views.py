from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .forms import InvitationForm, MemberRoleForm, OrganizationForm
from .http import AuthenticatedHttpRequest, PortalRequest, organization_required
from .models import Invitation, Membership
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


@organization_required
def dashboard(request: PortalRequest) -> HttpResponse:
    return render(request, "portal/dashboard.html")


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
