from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from .selectors import acting_membership, memberships_of


def portal(request: HttpRequest) -> dict[str, Any]:
    """The acting organization and the switcher's choices, for the navigation bar."""
    context: dict[str, Any] = {"PORTAL_PRODUCTION": settings.PRODUCTION}
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        membership = getattr(request, "membership", None) or acting_membership(request)
        context["acting_membership"] = membership
        context["all_memberships"] = memberships_of(request.user)  # type: ignore[arg-type]
    return context
