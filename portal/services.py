from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Model, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .emails import deliver, hand_off, queue_email
from .models import AuditEvent, Invitation, Membership, Organization, OutboundEmail, User
from .ratelimit import invitations_refusal
from .requestcontext import client_ip

logger = logging.getLogger(__name__)


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
    """Appends one audit event; one written for a request records the client's address."""
    details = dict(details or {})
    if client_ip.get():
        details.setdefault("ip", client_ip.get())
    return AuditEvent.objects.create(
        action=action,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_email=actor.email if actor is not None and actor.is_authenticated else "",
        organization=organization,
        acting_for=acting_for,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        details=details,
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
    # Serialises the organization's invitations, so that the limit counts each one.
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    refusal = invitations_refusal(actor=invited_by, organization=organization)
    if refusal:
        raise PortalError(refusal)
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


# ---------------------------------------------------------------------------------------------
# The outbox: at-least-once delivery, recognisable duplicates, backoff, nothing given up silently

# A sender that claimed a row owns it this long; one that died meanwhile (worker killed, host
# lost) is replaced once the lease expires. Longer than EMAIL_TIMEOUT and the task time limit.
OUTBOX_LEASE = timedelta(minutes=5)
# The on-commit hand-off sends a new email at once; the relay only steps in after this long.
OUTBOX_HANDOFF_GRACE = timedelta(minutes=1)


def outbox_backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: doubling from the base, at most 1 h."""
    base = settings.PORTAL_EMAIL_RETRY_SECONDS
    return min(timedelta(seconds=base * 2 ** max(0, attempts - 1)), timedelta(hours=1))


def _outbox_claim(email_id: UUID | str, *, now: datetime) -> OutboundEmail | None:
    """Takes one due email for this sender with a conditional UPDATE, or None if not due."""
    due = Q(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=OutboundEmail.Status.SENDING, lease_expires_at__lt=now
    )
    claimed = (
        OutboundEmail.objects.filter(due, pk=email_id).update(
            status=OutboundEmail.Status.SENDING,
            lease_expires_at=now + OUTBOX_LEASE,
            attempts=F("attempts") + 1,
        )
        == 1
    )
    return OutboundEmail.objects.get(pk=email_id) if claimed else None


def outbound_email_send(*, email_id: UUID | str, now: datetime | None = None) -> str:
    """Sends one outbox email if it is due: "sent", "retry", "failed" or "skipped".

    Not atomic on purpose: the claim commits before SMTP starts and the outcome commits after
    it ends, so no transaction (and no row lock) is held while talking to the mail server, and a
    failed commit can no longer undo the record of a message that was sent.
    """
    now = now or timezone.now()
    email = _outbox_claim(email_id, now=now)
    if email is None:
        return "skipped"  # sent, not due yet, or another sender holds it
    try:
        deliver(email)
    except Exception as exc:  # any failure is recorded on the row and retried with backoff
        return _outbox_failed(email, exc, now=now)
    # If this write is lost (database gone, worker killed), the lease expires and the relay
    # sends again: at least once, with the same Message-ID.
    _outbox_sent(email)
    return "sent"


def _outbox_sent(email: OutboundEmail) -> None:
    OutboundEmail.objects.filter(pk=email.pk, status=OutboundEmail.Status.SENDING).update(
        status=OutboundEmail.Status.SENT,
        sent_at=timezone.now(),
        lease_expires_at=None,
        last_error="",
    )


def _outbox_failed(email: OutboundEmail, exc: Exception, *, now: datetime) -> str:
    gave_up = email.attempts >= settings.PORTAL_EMAIL_MAX_ATTEMPTS
    OutboundEmail.objects.filter(pk=email.pk, status=OutboundEmail.Status.SENDING).update(
        status=OutboundEmail.Status.FAILED if gave_up else OutboundEmail.Status.PENDING,
        next_attempt_at=now + outbox_backoff(email.attempts),
        lease_expires_at=None,
        last_error=repr(exc)[:2000],
    )
    if gave_up:
        # Loud, and visible in admin (status Failed) where staff resend it.
        logger.error(
            "Outbox email %s to %s failed %d times and is no longer retried: %r",
            email.pk,
            ", ".join(email.to),
            email.attempts,
            exc,
        )
        return "failed"
    logger.warning("Outbox email %s attempt %d failed: %r", email.pk, email.attempts, exc)
    return "retry"


def outbox_due(*, now: datetime, limit: int = 500) -> list[UUID]:
    """Emails the relay should (re)send now: pending and due, or held by a sender that died."""
    return list(
        OutboundEmail.objects.filter(
            # A new email is the on-commit hand-off's for a minute; a retried one is due on time.
            Q(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now)
            & (Q(attempts__gt=0) | Q(created_at__lte=now - OUTBOX_HANDOFF_GRACE))
            | Q(status=OutboundEmail.Status.SENDING, lease_expires_at__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def outbound_emails_resend(*, emails: Iterable[OutboundEmail], actor: User) -> int:
    """Staff: sends failed (or still pending) emails again now, with fresh attempts; audited."""
    now = timezone.now()
    count = 0
    for email in emails:
        resent = OutboundEmail.objects.filter(
            pk=email.pk,
            status__in=[OutboundEmail.Status.FAILED, OutboundEmail.Status.PENDING],
        ).update(
            status=OutboundEmail.Status.PENDING,
            attempts=0,
            next_attempt_at=now,
            lease_expires_at=None,
        )
        if not resent:
            continue
        audit_record(
            action="outbox.resent",
            actor=actor,
            obj=email,
            details={"to": email.to, "status": email.status, "attempts": email.attempts},
        )
        transaction.on_commit(partial(hand_off, email.pk), robust=True)
        count += 1
    return count
