from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect

from .models import Membership, Organization, User
from .policy import OrganizationAccess
from .selectors import acting_membership


class AuthenticatedHttpRequest(HttpRequest):
    user: User


class PortalRequest(AuthenticatedHttpRequest):
    """A request by a logged-in user acting in an organization."""

    membership: Membership
    organization: Organization
    # How the actor reaches `organization`; views ask portal.policy.require(request, action).
    access: OrganizationAccess


View = Callable[..., HttpResponseBase]


def organization_required(view: View) -> View:
    """Logs the user in, finds the organization the request acts in, or asks to create one."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        membership = acting_membership(request)
        if membership is None:
            return redirect("organization-create")
        request.membership = membership  # type: ignore[attr-defined]
        request.organization = membership.organization  # type: ignore[attr-defined]
        request.access = OrganizationAccess(  # type: ignore[attr-defined]
            organization=membership.organization, role=membership.role
        )
        return view(request, *args, **kwargs)

    return wrapper
