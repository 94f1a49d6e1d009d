from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Invitation, Membership, Organization, User

SESSION_ORGANIZATION_KEY = "portal:organization"


def memberships_of(user: User) -> QuerySet[Membership]:
    """The user's memberships with their organizations, in a stable order."""
    return (
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name", "organization_id")
    )


def acting_membership(request: HttpRequest) -> Membership | None:
    """The one place that decides which organization a request acts in.

    Today that is the user's own organization, or the one chosen with the switcher when the user
    belongs to several; a customer delegating to the user's partner organization comes later.
    """
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = list(memberships_of(user))  # type: ignore[arg-type]
    if not memberships:
        return None
    chosen = request.session.get(SESSION_ORGANIZATION_KEY)
    for membership in memberships:
        if membership.organization_id == chosen:
            return membership
    return memberships[0]


def organization_members(*, actor: User, organization: Organization) -> QuerySet[Membership]:
    """Members of an organization the actor belongs to."""
    if not Membership.objects.filter(user=actor, organization=organization).exists():
        return Membership.objects.none()
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__email")
    )


def open_invitations(*, actor: User, organization: Organization) -> QuerySet[Invitation]:
    """Pending invitations of an organization the actor administers."""
    if not Membership.objects.filter(
        user=actor, organization=organization, role=Membership.Role.ADMIN
    ).exists():
        return Invitation.objects.none()
    return Invitation.objects.filter(
        organization=organization, accepted_at__isnull=True, revoked_at__isnull=True
    ).order_by("-created_at")
