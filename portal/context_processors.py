from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from .models import Organization
from .policy import Action
from .selectors import acting_context, user_memberships


def portal(request: HttpRequest) -> dict[str, Any]:
    """The acting organization, what the actor may do there, and the switcher's choices."""
    context: dict[str, Any] = {
        "PORTAL_PRODUCTION": settings.PRODUCTION,
        "site_name": str(settings.PORTAL_SITE_NAME),
    }
    if getattr(request, "user", None) is None or not request.user.is_authenticated:
        return context
    # organization_required already decided for this request; other pages (account, errors)
    # decide here, through the same selector.
    if hasattr(request, "access"):
        membership = request.membership  # type: ignore[attr-defined]
        organization = request.organization  # type: ignore[attr-defined]
        access = request.access  # type: ignore[attr-defined]
        delegation = request.delegation  # type: ignore[attr-defined]
    else:
        acting = acting_context(request)
        if acting is None:
            context["all_memberships"] = []
            return context
        membership, organization, access = acting.membership, acting.organization, acting.access
        delegation = acting.delegation
    context.update(
        acting_membership=membership,
        acting_organization=organization,
        acting_delegation=delegation,
        is_partner_user=membership.organization.kind == Organization.Kind.PARTNER,
        # {"view_licenses": True, ...}: what the navigation may offer in this context.
        can={action.value: access.allows(action) for action in Action},
        all_memberships=user_memberships(request.user),  # type: ignore[arg-type]
    )
    return context
