from __future__ import annotations

from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404

from portal.models import Membership, Organization, User

from .models import License, SupportRegistration


def licenses_visible_to(*, actor: User, organization: Organization) -> QuerySet[License]:
    """Licenses the actor may see while acting in `organization` (its members see its licenses)."""
    if not Membership.objects.filter(user=actor, organization=organization).exists():
        return License.objects.none()
    return License.objects.filter(owner=organization).select_related(
        "version__product", "owner", "registration"
    )


def license_for(*, actor: User, organization: Organization, pk: UUID | str) -> License:
    """One visible license, or 404 (never a hint that it exists elsewhere)."""
    try:
        return licenses_visible_to(actor=actor, organization=organization).get(pk=pk)
    except (License.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise Http404("No such license.") from exc


def latest_registration(*, organization: Organization) -> SupportRegistration | None:
    """The organization's most recent support registration, to prefill the next one."""
    return (
        SupportRegistration.objects.filter(organization=organization)
        .order_by("-created_at")
        .first()
    )
