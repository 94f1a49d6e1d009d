from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from allauth.account.views import EmailView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    HttpResponseServerError,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import i18n
from django.views.decorators.http import require_POST

from .formats import short_date
from .forms import (
    SIGNUP_VIA_INVITATION,
    CustomerAccountForm,
    CustomerInviteForm,
    CustomerSearchForm,
    DelegationGrantForm,
    DelegationUpdateForm,
    InvitationForm,
    MemberRoleForm,
    OrganizationForm,
    email_taken_message,
    signup_remember,
)
from .http import (
    AuthenticatedHttpRequest,
    PortalRequest,
    back_url,
    confirmation,
    organization_required,
)
from .models import Delegation, Invitation, Membership, Organization, User
from .policy import SCOPE_SHORT_LABELS, Action, Scope, partner_allows, require
from .requestcontext import request_id
from .selectors import (
    SESSION_ACTING_FOR_KEY,
    SESSION_ORGANIZATION_KEY,
    acting_membership,
    delegation_of_customer,
    delegation_of_partner,
    delegations_of_customer,
    email_address_taken,
    open_invitations,
    organization_members,
    partner_activity,
    partner_customers,
    partner_offers,
    user_memberships,
)
from .services import (
    PARTNERS_DO_NOT_DELEGATE,
    PortalError,
    customer_account_create,
    customer_invitation_resend,
    delegation_decline,
    delegation_grant,
    delegation_revoke,
    delegation_update,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_update,
    organization_create,
    user_language_remember,
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
        "action": Action.OBTAIN_KEYS,
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
        "action": Action.OBTAIN_KEYS,
    },
    {
        "title": gettext_lazy("Manage my licenses"),
        "text": gettext_lazy(
            "View and manage your current licenses, share them with other users, keep your own "
            "custom data on each license, renew maintenance and move licenses to new hosts."
        ),
        "url": "license-list",
        "button": gettext_lazy("My licenses"),
        "action": Action.VIEW_LICENSES,
    },
    {
        "title": gettext_lazy("Enterprise Flexible"),
        "text": gettext_lazy(
            "Gives Enterprise Flexible customers the ability to manage and control the licenses "
            "of their Enterprise Flexible contract: draw keys down as you deploy, report what "
            "you deployed and follow the true-up."
        ),
        "url": "ef-contracts",
        "button": gettext_lazy("My contracts"),
        "action": Action.ENTERPRISE_FLEX,
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
        "action": Action.OBTAIN_KEYS,
    },
    {
        "title": gettext_lazy("FileConnect"),
        "text": gettext_lazy(
            "Download the software your licenses and serial numbers entitle you to, and verify "
            "what you downloaded."
        ),
        "url": "fileconnect",
        "button": gettext_lazy("Download software"),
        "action": Action.DOWNLOAD_SOFTWARE,
    },
    {
        "title": gettext_lazy("Organization"),
        "text": gettext_lazy("See who works in your organization and invite colleagues."),
        "url": "members",
        "button": gettext_lazy("Manage members"),
        "action": Action.VIEW_MEMBERS,
    },
    {
        "title": gettext_lazy("Partners"),
        "text": gettext_lazy(
            "Let the channel partner that sold you a product act for you in this portal, choose "
            "what it may do, see what it did, and revoke its access at any time."
        ),
        "url": "partners",
        "button": gettext_lazy("Partners"),
        "action": Action.VIEW_PARTNERS,
        "customers_only": True,
    },
    {
        "title": gettext_lazy("Customers"),
        "text": gettext_lazy(
            "Act for the customers that delegated their licensing to your organization, or add "
            "the account of a customer that has none."
        ),
        "url": "partner-customers",
        "button": gettext_lazy("Customers"),
        "partners_only": True,
    },
]


def _function_shown(function: dict[str, Any], request: PortalRequest) -> bool:
    if function.get("partners_only"):
        return not request.access.is_delegated and partner_allows(request.membership, "list")
    if function.get("customers_only") and request.organization.kind != Organization.Kind.CUSTOMER:
        return False
    return request.access.allows(function["action"])


@organization_required(action=Action.OPEN_DASHBOARD)
def dashboard(request: PortalRequest) -> HttpResponse:
    is_partner = request.organization.kind == Organization.Kind.PARTNER
    functions = [
        {
            **function,
            "show_link": "link_url" in function
            and (is_partner or not function.get("link_for_partners_only")),
        }
        for function in FUNCTIONS
        if _function_shown(function, request)
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
    for membership in user_memberships(request.user):
        if str(membership.organization_id) == wanted:
            request.session[SESSION_ORGANIZATION_KEY] = membership.organization_id
            request.session.pop(SESSION_ACTING_FOR_KEY, None)
            messages.info(
                request,
                _("You are now working in %(name)s.") % {"name": membership.organization.name},
            )
            break
    else:
        messages.error(request, _("You are not a member of that organization."))
    # Back to the page the switch was made on: a path on this site, never a URL name or an
    # address elsewhere (redirect() would try "foo" as a view name and fail).
    target = request.POST.get("next", "")
    if not (
        target.startswith("/")
        and not target.startswith("//")
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    ):
        target = reverse("dashboard")
    # "Switch to it" on a page that names the object's organization keeps the object's page.
    return HttpResponseRedirect(target if request.POST.get("same_page") else _section_of(target))


def _section_of(target: str) -> str:
    """`target`, or where to go instead after a switch: a page about one object (a license, a
    contract: its URL pattern takes arguments) belongs to the organization switched away from,
    and would be a 404 in the new one. Its section's list (the nearest enclosing path that
    is a page of its own, /licenses/ for /licenses/<id>/renew/), else the dashboard."""
    path = urlsplit(target).path
    try:
        match = resolve(path)
    except Resolver404:
        return target
    if not (match.args or match.kwargs):
        return target
    parts = path.rstrip("/").split("/")
    while len(parts) > 2:
        parts.pop()
        parent = "/".join(parts) + "/"
        try:
            found = resolve(parent)
        except Resolver404:
            continue
        if not (found.args or found.kwargs):
            return parent
    return reverse("dashboard")


@organization_required(action=Action.VIEW_MEMBERS)
def members(request: PortalRequest) -> HttpResponse:
    organization = request.organization
    invite_form = InvitationForm(request.POST or None)
    if request.method == "POST":
        require(request, Action.MANAGE_MEMBERS)
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
@organization_required(action=Action.MANAGE_MEMBERS)
def member_update(request: PortalRequest, pk: int) -> HttpResponse:
    membership = (
        organization_members(actor=request.user, organization=request.organization)
        .filter(pk=pk)
        .first()
    )
    if membership is None:
        if request.POST.get("confirm") != "1":
            raise Http404
        # A confirmation posted again (the back button, an old tab) after the member was
        # removed: said, not a 404. It names no one, so it tells nothing about others.
        messages.info(request, _("This person is no longer a member of your organization."))
        return redirect("members")
    form = MemberRoleForm(request.POST)
    if (
        "remove" in request.POST
        and not _last_admin(membership)
        and (asked := _removal_confirmation(request, membership))
    ):
        return asked
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
        else:
            messages.error(request, _("Choose a role: Administrator or Member."))
    except PortalError as exc:
        messages.error(request, str(exc))
    return redirect("members")


def _last_admin(membership: Membership) -> bool:
    """Whether removing `membership` would leave its organization without an administrator: the
    service refuses it, so nothing is asked first (the refusal says why)."""
    admin = Membership.Role.ADMIN
    return (
        membership.role == admin
        and not Membership.objects.filter(organization_id=membership.organization_id, role=admin)
        .exclude(pk=membership.pk)
        .exists()
    )


def _removal_confirmation(request: PortalRequest, membership: Membership) -> HttpResponse | None:
    """Before removing a member; removing oneself locks one out at once, so it says so."""
    values = {"email": membership.user.email, "organization": request.organization.name}
    if membership.user_id == request.user.pk:
        consequences = [
            _(
                "This is your own account: you lose access to %(organization)s at once, and only "
                "another administrator can invite you back."
            )
            % values
        ]
    else:
        consequences = [
            _(
                "%(email)s loses access to %(organization)s and its licenses at once. To give it "
                "back, invite them again."
            )
            % values
        ]
    return confirmation(
        request,
        title=_("Remove %(email)s from %(organization)s?") % values,
        consequences=consequences,
        action=_("Remove"),
        cancel_url=reverse("members"),
    )


@require_POST
@organization_required(action=Action.MANAGE_MEMBERS)
def invitation_revoke_view(request: PortalRequest, pk: int) -> HttpResponse:
    invitation = get_object_or_404(
        open_invitations(actor=request.user, organization=request.organization), pk=pk
    )
    try:
        invitation_revoke(invitation=invitation, actor=request.user)
    except PortalError as exc:
        messages.error(request, str(exc))
    else:
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
        signup_remember(request, email=invitation.email, via=SIGNUP_VIA_INVITATION)
        return render(request, "portal/invitation.html", {"invitation": invitation})
    if request.method != "POST":
        # Someone else logged in (a colleague's browser, a second account): accepting would be
        # refused, so the page offers to log in with the invited address instead.
        other_user = cast(User, request.user).email.lower() != invitation.email.lower()
        return render(
            request, "portal/invitation.html", {"invitation": invitation, "other_user": other_user}
        )
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


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form whose token is stale, in the portal's page, translated.

    Logging in or out rotates the token, so every other tab's forms (the login form, the
    language switcher, Log out) fail the check. Nothing is done; the page says how to go on.
    Two of them have nothing left to do and just go on: a login while already logged in (in
    another tab) goes where logging in would, a logout of no session to the home page.
    """
    from django.middleware.csrf import REASON_NO_CSRF_COOKIE

    authenticated = request.user.is_authenticated
    if request.path == reverse("account_login") and authenticated:
        # The login page sends someone logged in on (to `next`, else the dashboard).
        messages.info(
            request,
            _("You are already logged in as %(email)s.")
            % {"email": cast(User, request.user).email},
        )
        return redirect(request.get_full_path())
    if request.path == reverse("account_logout") and not authenticated:
        return redirect("home")
    response = render(
        request,
        "403_csrf.html",
        {"back": back_url(request), "no_cookie": reason == REASON_NO_CSRF_COOKIE},
        status=403,
    )
    response["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------------------------
# Channel partners: the customer's Partners page


def _scope_labels(scopes: list[str]) -> list[str]:
    return [str(SCOPE_SHORT_LABELS[scope]) for scope in Scope if scope.value in scopes]


@organization_required(action=Action.VIEW_PARTNERS)
def partners(request: PortalRequest) -> HttpResponse:
    """The customer's delegations to channel partners, and what those partners did."""
    customer = request.organization
    is_customer = customer.kind == Organization.Kind.CUSTOMER
    grant_form = DelegationGrantForm(request.POST or None)
    if request.method == "POST":
        require(request, Action.MANAGE_PARTNERS)
        if not is_customer:
            raise PermissionDenied(str(PARTNERS_DO_NOT_DELEGATE))
        if grant_form.is_valid():
            try:
                delegation = delegation_grant(
                    customer=customer, actor=request.user, **grant_form.cleaned_data
                )
            except PortalError as exc:
                grant_form.add_error(None, str(exc))
            else:
                if delegation.status == Delegation.Status.OFFERED:
                    granted = _(
                        "%(partner)s may act for you from %(date)s. Its administrators were told "
                        "by email."
                    ) % {
                        "partner": delegation.partner.name,
                        "date": short_date(delegation.starts_on),
                    }
                else:
                    granted = _(
                        "%(partner)s may now act for you. Its administrators were told by email."
                    ) % {"partner": delegation.partner.name}
                messages.success(request, granted)
                return redirect("partners")
    delegations = [
        {
            "delegation": delegation,
            "scopes": _scope_labels(delegation.scopes),
            "form": DelegationUpdateForm(
                initial={"scopes": delegation.scopes, "ends_on": delegation.ends_on},
                prefix=f"d{delegation.pk}",
            ),
        }
        for delegation in delegations_of_customer(customer=customer)
    ]
    activity = Paginator(partner_activity(customer=customer), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/partners.html",
        {
            "grant_form": grant_form,
            "delegations": delegations,
            "activity": activity,
            "can_manage": is_customer and request.access.allows(Action.MANAGE_PARTNERS),
            "status_live": [str(s) for s in Delegation.LIVE],
        },
        status=400 if grant_form.errors else 200,
    )


@require_POST
@organization_required(action=Action.MANAGE_PARTNERS)
def partner_update(request: PortalRequest, pk: int) -> HttpResponse:
    delegation = delegation_of_customer(customer=request.organization, pk=pk)
    if delegation is None:
        raise Http404
    # A delegation that already ended is not asked about: the service says so.
    if (
        "revoke" in request.POST
        and delegation.status in Delegation.LIVE
        and (
            asked := confirmation(
                request,
                title=_("Revoke the access of %(partner)s?") % {"partner": delegation.partner.name},
                consequences=[
                    _(
                        "%(partner)s can no longer act for you, from its next page on, and its "
                        "administrators are told by email. To let it act for you again, grant it a "
                        "new delegation."
                    )
                    % {"partner": delegation.partner.name}
                ],
                action=_("Revoke"),
                cancel_url=reverse("partners"),
            )
        )
    ):
        return asked
    try:
        if "revoke" in request.POST:
            delegation_revoke(delegation=delegation, actor=request.user)
            messages.success(
                request,
                _("%(partner)s can no longer act for you, from its next page on.")
                % {"partner": delegation.partner.name},
            )
        else:
            form = DelegationUpdateForm(request.POST, prefix=f"d{delegation.pk}")
            if not form.is_valid():
                for errors in form.errors.values():
                    messages.error(request, " ".join(str(e) for e in errors))
                return redirect("partners")
            delegation_update(delegation=delegation, actor=request.user, **form.cleaned_data)
            messages.success(
                request,
                _("The access of %(partner)s was updated.") % {"partner": delegation.partner.name},
            )
    except PortalError as exc:
        messages.error(request, str(exc))
    return redirect("partners")


# ---------------------------------------------------------------------------------------------
# Channel partners: the partner's Customers pages


def _partner_membership(request: PortalRequest, action: str) -> Membership:
    """The user's own partner membership, whether or not it acts for a customer right now."""
    if not partner_allows(request.membership, action):
        raise PermissionDenied(
            _("Customers are for channel partners: your organization is not a partner.")
        )
    return request.membership


def _partner_view(view: Any) -> Any:
    # The Customers pages belong to the partner itself, so they stay reachable while acting for a
    # customer (to switch to another, or back): they name every action a delegation can allow.
    return organization_required(action=tuple(Action))(view)


@_partner_view
def partner_customers_view(request: PortalRequest) -> HttpResponse:
    membership = _partner_membership(request, "list")
    search = CustomerSearchForm(request.GET or None)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    customers = partner_customers(partner=membership.organization, query=query)
    if search.is_bound and not search.is_valid():
        # A search it cannot run (too long): its error, not every customer as if it matched.
        customers = customers.none()
    page = Paginator(customers, 25).get_page(request.GET.get("page"))
    rows = [{"delegation": d, "scopes": _scope_labels(d.scopes)} for d in page.object_list]
    offers = [
        {"delegation": d, "scopes": _scope_labels(d.scopes)}
        for d in partner_offers(partner=membership.organization)
    ]
    return render(
        request,
        "portal/partner_customers.html",
        {
            "search": search,
            "query": query,
            # The page links carry the search encoded: names hold "&", "+" and "#".
            "page_query": urlencode({"q": query}) if query else "",
            "page": page,
            "rows": rows,
            "offers": offers,
            "partner": membership.organization,
            "is_partner_admin": partner_allows(membership, "decline_delegation"),
        },
    )


@require_POST
@_partner_view
def partner_act(request: PortalRequest, pk: int) -> HttpResponse:
    """ "Act for this customer": the following requests act in the customer's context."""
    membership = _partner_membership(request, "act")
    delegation = delegation_of_partner(partner=membership.organization, pk=pk)
    if delegation is None or not delegation.is_effective(today=timezone.localdate()):
        raise Http404
    request.session[SESSION_ACTING_FOR_KEY] = delegation.customer_id
    messages.info(
        request,
        _("You are now acting for %(customer)s.") % {"customer": delegation.customer.name},
    )
    return redirect("dashboard")


@require_POST
@_partner_view
def partner_stop(request: PortalRequest) -> HttpResponse:
    """Back to the partner's own organization."""
    membership = _partner_membership(request, "act")
    request.session.pop(SESSION_ACTING_FOR_KEY, None)
    messages.info(
        request,
        _("You are working in %(name)s again.") % {"name": membership.organization.name},
    )
    return redirect("partner-customers")


@require_POST
@_partner_view
def partner_decline(request: PortalRequest, pk: int) -> HttpResponse:
    membership = _partner_membership(request, "decline_delegation")
    delegation = delegation_of_partner(partner=membership.organization, pk=pk)
    if delegation is None:
        if request.POST.get("confirm") != "1":
            raise Http404
        # A confirmation posted again after the delegation ended (declined, or revoked by the
        # customer meanwhile): said, not a 404.
        messages.info(request, _("Your organization no longer acts for this customer."))
        return redirect("partner-customers")
    if asked := _decline_confirmation(request, delegation):
        return asked
    try:
        delegation_decline(delegation=delegation, actor=request.user)
    except PortalError as exc:
        messages.error(request, str(exc))
    else:
        if request.session.get(SESSION_ACTING_FOR_KEY) == delegation.customer_id:
            request.session.pop(SESSION_ACTING_FOR_KEY, None)
        if getattr(delegation, "awaiting_admin", False):
            # An account the partner opened that nobody claimed: no administrator to tell.
            message = _(
                "You declined to act for %(customer)s. It has no administrator yet, so nobody "
                "can use its account now, and the invitation to claim it no longer works. If "
                "this was a mistake, contact customer care."
            )
        else:
            message = _(
                "You declined to act for %(customer)s. Its administrators were told by email."
            )
        messages.success(request, message % {"customer": delegation.customer.name})
    return redirect("partner-customers")


def _decline_confirmation(request: PortalRequest, delegation: Delegation) -> HttpResponse | None:
    """Before declining a delegation: an account nobody claimed yet is left without a way in."""
    values = {"customer": delegation.customer.name}
    if getattr(delegation, "awaiting_admin", False):
        consequences = [
            _(
                "%(customer)s has no administrator yet: once you decline, nobody can use its "
                "account, and the invitation to claim it stops working. Only customer care can "
                "undo this."
            )
            % values
        ]
    else:
        consequences = [
            _(
                "Your organization will no longer be able to act for %(customer)s, and its "
                "administrators are told by email. Only they can delegate to you again."
            )
            % values
        ]
    return confirmation(
        request,
        title=_("Decline to act for %(customer)s?") % values,
        consequences=consequences,
        action=_("Decline"),
        cancel_url=reverse("partner-customers"),
    )


@_partner_view
def partner_customer_create(request: PortalRequest) -> HttpResponse:
    """ "Add a customer": the partner opens the account of a customer that has none."""
    membership = _partner_membership(request, "add_customer")
    form = CustomerAccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            delegation = customer_account_create(
                partner=membership.organization, actor=request.user, **form.cleaned_data
            )
        except PortalError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _(
                    "%(customer)s was created, with your organization as its partner. "
                    "%(email)s was invited to claim it as its administrator."
                )
                % {
                    "customer": delegation.customer.name,
                    "email": form.cleaned_data["contact_email"],
                },
            )
            return redirect("partner-customers")
    return render(request, "portal/partner_customer_create.html", {"form": form})


@require_POST
@_partner_view
def partner_customer_invite(request: PortalRequest, pk: int) -> HttpResponse:
    """Invites again the administrator of a customer that has none (an account the partner
    added whose contact never claimed it)."""
    membership = _partner_membership(request, "add_customer")
    delegation = delegation_of_partner(partner=membership.organization, pk=pk)
    if delegation is None:
        raise Http404
    form = CustomerInviteForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(str(e) for e in errors))
        return redirect("partner-customers")
    try:
        invitation = customer_invitation_resend(
            delegation=delegation, actor=request.user, **form.cleaned_data
        )
    except PortalError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _(
                "%(email)s was invited to claim %(customer)s as its administrator. Earlier "
                "invitations to it no longer work."
            )
            % {"email": invitation.email, "customer": delegation.customer.name},
        )
    return redirect("partner-customers")


def language_set(request: HttpRequest) -> HttpResponse:
    """Django's set_language (the switcher: cookie, redirect back), which for someone logged in
    also stores the choice: emails others send them are written in it."""
    response = i18n.set_language(request)
    user = request.user
    if request.method == "POST" and user.is_authenticated:
        language = request.POST.get(i18n.LANGUAGE_QUERY_PARAMETER)
        if language and translation.check_for_language(language):
            user_language_remember(cast(User, user), language, chosen=True)
    return response


class AccountEmailView(EmailView):
    """allauth's email addresses page, whose Make Primary never makes another account's address
    this account's login.

    allauth copies the new primary address to User.email: another account's address (added
    before PortalAddEmailForm refused it, or given to another account by staff since) failed on
    the unique login with a 500, half-written (the EmailAddress rows changed, the login not).
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "action_add" in request.POST or "action_primary" not in request.POST:
            return super().post(request, *args, **kwargs)
        user = cast(User, request.user)
        email = request.POST.get("email", "")
        # A NUL is in no address (allauth's form refuses it); PostgreSQL refuses it in a query.
        if email and "\x00" not in email and email_address_taken(email, by_other_than=user):
            messages.error(request, email_taken_message(email.strip().lower()))
            return redirect("account_email")
        try:
            # All of it or nothing: the rows and the login change together.
            with transaction.atomic():
                return super().post(request, *args, **kwargs)
        except IntegrityError:  # taken by another account meanwhile
            messages.error(request, email_taken_message(email.strip().lower()))
            return redirect("account_email")
