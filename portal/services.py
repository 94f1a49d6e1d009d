from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from .emails import queue_email
from .models import AuditEvent, Invitation, Membership, Organization, User


class PortalError(Exception):
    """An illegal state change; its message is shown to the user as it is."""


def audit_record(
    *,
    action: str,
    actor: User | None = None,
    organization: Organization | None = None,
    acting_for: Organization | None = None,
    obj: Model | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Appends one audit event."""
    return AuditEvent.objects.create(
        action=action,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_email=actor.email if actor is not None and actor.is_authenticated else "",
        organization=organization,
        acting_for=acting_for,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        details=details or {},
    )


@transaction.atomic
def organization_create(
    *, name: str, admin: User, address: str = "", country: str = ""
) -> Organization:
    """Creates a customer organization with `admin` as its first administrator."""
    organization = Organization.objects.create(name=name, address=address, country=country)
    Membership.objects.create(user=admin, organization=organization, role=Membership.Role.ADMIN)
    audit_record(
        action="organization.created", actor=admin, organization=organization, obj=organization
    )
    return organization


def _require_admin(actor: User, organization: Organization) -> None:
    if not Membership.objects.filter(
        user=actor, organization=organization, role=Membership.Role.ADMIN
    ).exists():
        raise PortalError(_("Only the organization's administrators can do this."))


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: User
) -> Invitation:
    """Invites an email address to join the organization (re-inviting re-sends the email)."""
    _require_admin(invited_by, organization)
    email = email.strip().lower()
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise PortalError(
            _("%(email)s is already a member of this organization.") % {"email": email}
        )
    invitation = Invitation.objects.filter(
        organization=organization, email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).first()
    if invitation is None or not invitation.is_open(now=timezone.now()):
        if invitation is not None:
            invitation.revoked_at = timezone.now()
            invitation.save(update_fields=["revoked_at"])
        invitation = Invitation.objects.create(
            organization=organization, email=email, role=role, invited_by=invited_by
        )
    queue_email(
        template="invitation",
        to=[email],
        context={"invitation": invitation, "organization": organization, "inviter": invited_by},
    )
    audit_record(
        action="invitation.sent",
        actor=invited_by,
        organization=organization,
        obj=invitation,
        details={"email": email, "role": role},
    )
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Makes `user` a member of the inviting organization."""
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not locked.is_open(now=timezone.now()):
        raise PortalError(_("This invitation has expired or was already used. Ask for a new one."))
    if locked.email.lower() != user.email.lower():
        raise PortalError(
            _("This invitation was sent to %(email)s. Log in with that address to accept it.")
            % {"email": locked.email}
        )
    locked.accepted_at = timezone.now()
    locked.save(update_fields=["accepted_at"])
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                user=user, organization=locked.organization, role=locked.role
            )
    except IntegrityError:
        membership = Membership.objects.get(user=user, organization=locked.organization)
    audit_record(
        action="invitation.accepted",
        actor=user,
        organization=locked.organization,
        obj=membership,
        details={"role": membership.role},
    )
    return membership


@transaction.atomic
def membership_ensure(
    *, organization: Organization, user: User, actor: User | None, reason: str
) -> Membership:
    """Makes `user` a member of `organization` (role member) unless they already belong to it.

    For invitations a feature app sends on the organization's behalf (an Enterprise Flexible
    contract's super user inviting a colleague); `reason` names that invitation in the audit.
    """
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                user=user, organization=organization, role=Membership.Role.MEMBER
            )
    except IntegrityError:
        return Membership.objects.get(user=user, organization=organization)
    audit_record(
        action="membership.added",
        actor=actor,
        organization=organization,
        obj=membership,
        details={"email": user.email, "role": membership.role, "reason": reason},
    )
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    """Withdraws an open invitation."""
    _require_admin(actor, invitation.organization)
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    audit_record(
        action="invitation.revoked",
        actor=actor,
        organization=invitation.organization,
        obj=invitation,
        details={"email": invitation.email},
    )


@transaction.atomic
def membership_update(
    *, membership: Membership, actor: User, role: str | None = None, remove: bool = False
) -> None:
    """Changes a member's role or removes them; an organization always keeps an administrator."""
    organization = membership.organization
    _require_admin(actor, organization)
    # Lock the organization's admin rows so two admins cannot demote each other at once.
    admins = list(
        Membership.objects.select_for_update()
        .filter(organization=organization, role=Membership.Role.ADMIN)
        .values_list("pk", flat=True)
    )
    losing_admin = membership.pk in admins and (remove or role != Membership.Role.ADMIN)
    if losing_admin and len(admins) == 1:
        raise PortalError(
            _("An organization needs at least one administrator. Promote another member first.")
        )
    if remove:
        membership.delete()
        audit_record(
            action="membership.removed",
            actor=actor,
            organization=organization,
            details={"email": membership.user.email},
        )
        return
    if role is not None and role != membership.role:
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            action="membership.role_changed",
            actor=actor,
            organization=organization,
            obj=membership,
            details={"email": membership.user.email, "from": old, "to": role},
        )
