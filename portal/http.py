from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, overload

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from .models import Delegation, Membership, Organization, User
from .policy import Action, OrganizationAccess, refusal, remember_access
from .requestcontext import acting_under
from .selectors import SESSION_ACTING_FOR_KEY, acting_context


class AuthenticatedHttpRequest(HttpRequest):
    user: User


class PortalRequest(AuthenticatedHttpRequest):
    """A request by a logged-in user acting in an organization."""

    # The user's own membership: the partner's, when the user acts for a customer.
    membership: Membership
    # Whose data the request reads and writes: the customer, when a partner acts for one.
    organization: Organization
    # How the actor reaches `organization`; views ask portal.policy.require(request, action).
    access: OrganizationAccess
    delegation: Delegation | None


View = Callable[..., HttpResponseBase]

# The hidden field of the organization a form was rendered for ({% organization_field %}): a
# form left open in one tab while another switched organization must not write into the other.
ORGANIZATION_FIELD = "portal_organization"


@overload
def organization_required(view: View) -> View: ...
@overload
def organization_required(*, action: Action | tuple[Action, ...]) -> Callable[[View], View]: ...


def organization_required(
    view: View | None = None, *, action: Action | tuple[Action, ...] = ()
) -> View | Callable[[View], View]:
    """Logs the user in and finds the organization the request acts in (or asks to create one).

    `action` is what the view is for: the request is refused unless the actor may do one of
    them. A partner acting for a customer reaches only views that name an action its delegation
    allows: a view that names none is refused in a customer's context, so a new page cannot
    forget delegation scopes.
    """
    actions = (action,) if isinstance(action, Action) else tuple(action)

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            context = acting_context(request)
            if context is None:
                return redirect("organization-create")
            if context.ended is not None:
                return _delegation_ended(request, context.ended)
            if context.delegation is None:
                # A customer the partner never had a delegation from: forget the choice.
                request.session.pop(SESSION_ACTING_FOR_KEY, None)
            if _posted_elsewhere(request, context.organization):
                return _organization_changed(request, context.organization)
            access = context.access
            allowed = any(access.allows(a) for a in actions) if actions else not access.is_delegated
            if not allowed:
                raise PermissionDenied(refusal(delegated=access.is_delegated, actions=actions))
            request.membership = context.membership  # type: ignore[attr-defined]
            request.organization = context.organization  # type: ignore[attr-defined]
            request.access = access  # type: ignore[attr-defined]
            request.delegation = context.delegation  # type: ignore[attr-defined]
            remember_access(request.user, access)  # type: ignore[arg-type]
            with acting_under(context.delegation):
                return view(request, *args, **kwargs)

        wrapper.portal_actions = actions  # type: ignore[attr-defined]
        return wrapper

    return decorate(view) if view is not None else decorate


def post_only(*, back: str) -> Callable[[View], View]:
    """require_POST, except that a GET or HEAD is redirected to `back` (a URL name, reversed with
    the view's arguments): the page the form is on.

    A refused form is shown at the address it was posted to; a reload, Back, or the language
    switcher returning there asks it with a GET, which got an empty 405 page.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method in ("GET", "HEAD"):
                return redirect(back, *args, **kwargs)
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


# Posted by the confirmation page's button: the action goes ahead only with it.
CONFIRM_FIELD = "confirm"


def confirmation(
    request: HttpRequest,
    *,
    title: str,
    consequences: Sequence[str],
    action: str,
    cancel_url: str,
) -> HttpResponse | None:
    """Asks before an action that cannot be undone (removing a member, revoking access): None
    once the form came back with confirm=1, else the page that says what will happen.

    Its button posts the same fields again plus confirm=1, to the same address, and Cancel goes
    back to `cancel_url`; no JavaScript is needed, and a form that skips the page (a script, an
    old tab) changes nothing.
    """
    if request.POST.get(CONFIRM_FIELD) == "1":
        return None
    fields = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", CONFIRM_FIELD)
        for value in values
    ]
    return render(
        request,
        "portal/confirm.html",
        {
            "title": title,
            "consequences": consequences,
            "action": action,
            "cancel_url": cancel_url,
            "fields": fields,
            # Where the language switcher returns: the page the action was on.
            "page_url": cancel_url,
        },
    )


def _posted_elsewhere(request: HttpRequest, organization: Organization) -> bool:
    """Whether a form rendered for another organization is posted: the user switched (or
    started or stopped acting for a customer) in another tab since. Forms without the field
    (an API-style post, a test) are not checked."""
    if request.method != "POST":
        return False
    posted = request.POST.get(ORGANIZATION_FIELD)
    return posted is not None and posted != str(organization.pk)


def _organization_changed(request: HttpRequest, organization: Organization) -> HttpResponseBase:
    """Refuses the stale form, changing nothing, and goes back to the page it came from, now
    shown for the organization the user works in."""
    messages.error(
        request,
        _(
            "Nothing was changed: you switched organization after this page was opened. You "
            "are now working in %(organization)s: check the page and submit it again."
        )
        % {"organization": organization.name},
    )
    return redirect(back_url(request))


def back_url(request: HttpRequest) -> str:
    """The page the request came from (its Referer) when it is one of this site's, else the
    dashboard (the home page for someone logged out): where a refusal sends people back."""
    back = request.headers.get("referer", "")
    if url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return back
    return reverse("dashboard" if request.user.is_authenticated else "home")


def _delegation_ended(request: HttpRequest, delegation: Delegation) -> HttpResponseBase:
    """The partner's session acted for a customer whose delegation is no longer in effect.

    Refused with a page that says why; the choice is forgotten, so the partner's next page is
    in its own organization again.
    """
    from .services import delegation_expire_lapsed

    request.session.pop(SESSION_ACTING_FOR_KEY, None)
    if delegation.has_lapsed(today=timezone.localdate()):
        delegation_expire_lapsed(delegation=delegation)
        delegation.refresh_from_db()
    reasons = {
        Delegation.Status.REVOKED: _("%(customer)s revoked its delegation to your organization."),
        Delegation.Status.DECLINED: _("Your organization declined the delegation of %(customer)s."),
    }
    reason = reasons.get(
        delegation.status,  # type: ignore[call-overload]
        _("The delegation of %(customer)s to your organization has ended."),
    )
    return render(
        request,
        "portal/delegation_ended.html",
        {"reason": reason % {"customer": delegation.customer.name}, "delegation": delegation},
        status=403,
    )
