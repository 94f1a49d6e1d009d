from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import suppress
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar
from uuid import UUID

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, models, transaction
from django.db import connection as db_connection
from django.db.models import F, Model, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .emails import (
    AttachmentUnavailable,
    EmailToQueue,
    composer_for,
    deliver,
    hand_off,
    hand_off_batches,
    queue_email,
    queue_emails,
)
from .models import (
    AuditEvent,
    Delegation,
    Invitation,
    Membership,
    Organization,
    OutboundEmail,
    User,
)
from .policy import SCOPE_LABELS, Scope
from .ratelimit import invitations_refusal
from .requestcontext import client_ip, current_delegation
from .selectors import administrators_emailed, organization_kind_ties

logger = logging.getLogger(__name__)


class PortalError(Exception):
    """An illegal state change; its message is shown to the user as it is."""


class MembershipEndRefused(PortalError):
    """An app refuses a member's removal (membership_ended_register): they hold something in the
    organization that nobody would hold after them; the message says what to do first."""


def user_language_remember(user: User, language: str | None, *, chosen: bool) -> None:
    """Stores the language `user` reads the portal in, which emails others send them are
    written in (portal.emails.recipient_languages). A language `chosen` on the portal (the
    switcher, its cookie) replaces the stored one; one merely negotiated from the browser's
    settings is stored only when none was. One UPDATE when it changes; nothing otherwise."""
    supported = dict(settings.LANGUAGES)
    if not language:
        return
    try:
        language = translation.get_supported_language_variant(language)
    except LookupError:
        return
    if language not in supported or user.language == language:
        return
    if user.language and not chosen:
        return
    user.language = language
    User.objects.filter(pk=user.pk).update(language=language)


def audit_record(
    *,
    action: str,
    actor: User | None = None,
    organization: Organization | None = None,
    acting_for: Organization | None = None,
    obj: Model | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Appends one audit event.

    Under a partner's delegation (portal.acting), an event of the customer records the partner
    organization and the customer it acted for, whichever service writes it; one written for a
    request records the client's address.
    """
    event = audit_event_build(
        action=action,
        actor=actor,
        organization=organization,
        acting_for=acting_for,
        obj=obj,
        details=details,
    )
    event.save(force_insert=True)
    return event


def audit_event_build(
    *,
    action: str,
    actor: User | None = None,
    organization: Organization | None = None,
    acting_for: Organization | None = None,
    obj: Model | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """The event audit_record writes, unsaved: bulk writers insert many with bulk_create."""
    details = dict(details or {})
    if client_ip.get():
        details.setdefault("ip", client_ip.get())
    delegation = current_delegation()
    if (
        delegation is not None
        and acting_for is None
        and (organization is None or organization.pk == delegation.customer_id)
    ):
        organization, acting_for = delegation.partner, delegation.customer
    return AuditEvent(
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
    elif invitation.role != role:
        # Re-inviting with another role corrects the link already sent (an administrator
        # invited by mistake joins as a member), as the audit event below records.
        invitation.role = role
        invitation.save(update_fields=["role"])
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
    if not _inviter_may_invite(locked):
        raise PortalError(
            _(
                "The person who invited you can no longer invite people to %(name)s. Ask one of "
                "its administrators for a new invitation."
            )
            % {"name": locked.organization.name}
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


def _inviter_may_invite(invitation: Invitation) -> bool:
    """Whether whoever sent `invitation` may still invite people to its organization: one of
    its administrators, or a user of a channel partner whose delegation from it is live (the
    partner opened the customer's account and invited its administrator).

    Their invitations are withdrawn when they lose that right (membership_update,
    memberships_staff_changed); checked again here for any change those do not see."""
    if invitation.invited_by_id is None:
        return False
    if Membership.objects.filter(
        user_id=invitation.invited_by_id,
        organization_id=invitation.organization_id,
        role=Membership.Role.ADMIN,
    ).exists():
        return True
    return Delegation.objects.filter(
        customer_id=invitation.organization_id,
        status__in=Delegation.LIVE,
        partner__memberships__user_id=invitation.invited_by_id,
    ).exists()


def _invitations_of_withdraw(
    *, organization: Organization, inviter: User, actor: User, reason: str
) -> int:
    """Withdraws the open invitations `inviter` sent to join `organization`, who is no longer
    one of its administrators: a link they sent must not make someone an administrator (or a
    member) after they lost the right to, as the audit records (`reason`)."""
    invitations = list(
        Invitation.objects.select_for_update(of=("self",))
        .filter(
            organization=organization,
            invited_by=inviter,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        .select_related("invited_by")
    )
    _invitations_withdraw_audited(
        invitations, actor=actor, organization=organization, reason=reason
    )
    return len(invitations)


def _invitations_withdraw_audited(
    invitations: Iterable[Invitation],
    *,
    actor: User | None,
    organization: Organization,
    reason: str,
) -> list[Invitation]:
    """Withdraws `invitations` (locked by the caller, with their sender), each withdrawn one
    audited with `reason`; returns those withdrawn."""
    withdrawn = [
        invitation for invitation in invitations if invitation_withdraw(invitation) is True
    ]
    for invitation in withdrawn:
        audit_record(
            action="invitation.revoked",
            actor=actor,
            organization=organization,
            obj=invitation,
            details={
                "email": invitation.email,
                "invited_by": invitation.invited_by.email if invitation.invited_by else "",
                "reason": reason,
            },
        )
    return withdrawn


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


def invitation_withdraw(invitation: models.Model) -> bool | None:
    """Withdraws `invitation` (an organization's or a contract's) if it is still open: True
    when withdrawn now, False when it was withdrawn already (and audited then), None when the
    invitee accepted it meanwhile. Conditional, as the page that listed it may be stale."""
    rows = type(invitation)._default_manager
    withdrawn = rows.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    if withdrawn:
        return True
    if rows.filter(pk=invitation.pk, accepted_at__isnull=False).exists():
        return None
    return False


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    """Withdraws an open invitation."""
    _require_admin(actor, invitation.organization)
    # The invitee may have accepted (or another administrator withdrawn) since the Members
    # page listed the invitation.
    withdrawn = invitation_withdraw(invitation)
    if withdrawn is not True:
        if withdrawn is None:
            raise PortalError(
                _(
                    "%(email)s already accepted this invitation: remove them from the list of "
                    "members if they should not be there."
                )
                % {"email": invitation.email}
            )
        return  # withdrawn already, and audited then
    audit_record(
        action="invitation.revoked",
        actor=actor,
        organization=invitation.organization,
        obj=invitation,
        details={"email": invitation.email},
    )


# ---------------------------------------------------------------------------------------------
# What ends with a membership


class MembershipEndedHook(Protocol):
    def __call__(self, *, organization: Organization, user: User, actor: User | None) -> None: ...


class MembershipEndProblem(Protocol):
    def __call__(self, *, organization: Organization, users: Collection[User]) -> str | None: ...


_MEMBERSHIP_ENDED: dict[str, MembershipEndedHook] = {}
_MEMBERSHIP_END_PROBLEMS: dict[str, MembershipEndProblem] = {}


def membership_ended_register(
    name: str, hook: MembershipEndedHook, *, problem: MembershipEndProblem | None = None
) -> None:
    """Lets an app end what a member held in the organization through it when they leave
    (enterprise_flex: their level on the organization's contracts). Apps call it from
    AppConfig.ready, so that the portal imports no domain app.

    A hook may refuse the removal by raising MembershipEndRefused: it runs in the removal's
    transaction, so nothing of the removal is kept, and callers show the message. `problem`
    tells a form beforehand (membership_end_problem); the hook decides, under its locks."""
    _MEMBERSHIP_ENDED[name] = hook
    if problem is not None:
        _MEMBERSHIP_END_PROBLEMS[name] = problem


def membership_end_problem(*, organization: Organization, users: Collection[User]) -> str | None:
    """Why an app refuses that `users` all leave `organization` now, or None."""
    for problem in _MEMBERSHIP_END_PROBLEMS.values():
        message = problem(organization=organization, users=users)
        if message:
            return message
    return None


def _membership_ended(*, organization: Organization, user: User, actor: User | None) -> None:
    # In the removal's transaction, after its own audit event: whatever an app ends is audited
    # by that app, with the same actor. Someone who is a member again (staff removed a row and
    # added the person back in one save) lost nothing.
    if Membership.objects.filter(organization=organization, user=user).exists():
        return
    for hook in _MEMBERSHIP_ENDED.values():
        hook(organization=organization, user=user, actor=actor)


@transaction.atomic
def membership_update(
    *, membership: Membership, actor: User, role: str | None = None, remove: bool = False
) -> None:
    """Changes a member's role or removes them; an organization always keeps an administrator.

    Removing a member also ends what apps gave them in the organization (membership_ended_register).
    """
    organization = membership.organization
    _require_admin(actor, organization)
    # Lock the organization's admin rows so two admins cannot demote each other at once.
    locked = list(
        Membership.objects.select_for_update()
        .filter(organization=organization, role=Membership.Role.ADMIN)
        .values_list("pk", "user_id")
    )
    # Checked again under the lock: an administrator demoted or removed by another one after
    # the check above (two requests at once) must not act on what it read before.
    if actor.pk not in {user_id for _pk, user_id in locked}:
        raise PortalError(_("Only the organization's administrators can do this."))
    admins = [pk for pk, _user_id in locked]
    losing_admin = membership.pk in admins and (remove or role != Membership.Role.ADMIN)
    if losing_admin and len(admins) == 1:
        raise PortalError(
            _("An organization needs at least one administrator. Promote another member first.")
        )
    if losing_admin:
        _invitations_of_withdraw(
            organization=organization,
            inviter=membership.user,
            actor=actor,
            reason="inviter_removed" if remove else "inviter_demoted",
        )
    if remove:
        membership.delete()
        audit_record(
            action="membership.removed",
            actor=actor,
            organization=organization,
            details={"email": membership.user.email},
        )
        # What they held through the organization ends with it: invited back later, they
        # start afresh rather than find their old access again.
        _membership_ended(organization=organization, user=membership.user, actor=actor)
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


@transaction.atomic
def memberships_staff_changed(
    *,
    organization: Organization,
    actor: User,
    added: Iterable[Membership] = (),
    removed: Iterable[User] = (),
    role_changes: Iterable[tuple[Membership, str]] = (),
) -> None:
    """Audits the membership changes staff saved on an organization's admin page, as
    membership_update and membership_ensure audit those of its administrators; the people
    `removed` lose what apps gave them in the organization, as membership_update does."""
    for membership in added:
        audit_record(
            action="membership.added",
            actor=actor,
            organization=organization,
            obj=membership,
            details={"email": membership.user.email, "role": membership.role, "reason": "staff"},
        )
    for user in removed:
        audit_record(
            action="membership.removed",
            actor=actor,
            organization=organization,
            details={"email": user.email, "reason": "staff"},
        )
        _membership_ended(organization=organization, user=user, actor=actor)
        _staff_inviter_withdraw(organization=organization, user=user, actor=actor)
    for membership, old in role_changes:
        if old == Membership.Role.ADMIN:
            _staff_inviter_withdraw(organization=organization, user=membership.user, actor=actor)
        audit_record(
            action="membership.role_changed",
            actor=actor,
            organization=organization,
            obj=membership,
            details={
                "email": membership.user.email,
                "from": old,
                "to": membership.role,
                "reason": "staff",
            },
        )


def _staff_inviter_withdraw(*, organization: Organization, user: User, actor: User) -> None:
    # Someone staff removed or demoted, unless the same save made them an administrator again.
    if not Membership.objects.filter(
        organization=organization, user=user, role=Membership.Role.ADMIN
    ).exists():
        _invitations_of_withdraw(
            organization=organization, inviter=user, actor=actor, reason="staff"
        )


# ---------------------------------------------------------------------------------------------
# What staff change in admin


def _audit_value(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value if isinstance(value, bool | int | float | type(None)) else str(value)


def staff_changes(*, stored: Model, edited: Model, fields: Iterable[str]) -> dict[str, Any]:
    """{field: {"from", "to"}} for the `fields` staff changed in admin: `edited` (the form's
    instance) against `stored` (the row as the database holds it, locked by the caller).
    What the audit event of a staff edit keeps; empty when nothing changed."""
    changes: dict[str, Any] = {}
    for name in fields:
        field = stored._meta.get_field(name)
        assert isinstance(field, models.Field)  # a form's fields are the model's own
        attname = field.attname  # a foreign key: its id
        before, after = getattr(stored, attname), getattr(edited, attname)
        if before != after:
            changes[name] = {"from": _audit_value(before), "to": _audit_value(after)}
    return changes


StaffEdited = TypeVar("StaffEdited", bound=Model)


@transaction.atomic
def staff_edit_save(
    *,
    edited: StaffEdited,
    fields: Sequence[str],
    actor: User | None,
    action: str,
    organization: Callable[[StaffEdited], Organization | None] = lambda _locked: None,
    details: Callable[[StaffEdited], dict[str, Any]] = lambda _locked: {},
    check: Callable[[StaffEdited, dict[str, Any]], None] | None = None,
) -> StaffEdited:
    """Saves the `fields` staff changed on `edited` (an admin form's instance) under its row's
    lock, audited as `action` with each field's before and after (staff_changes), and the
    `organization` and `details` read from the locked row; `check(locked, changes)` may refuse
    by raising, before anything is written. Nothing is written when nothing changed."""
    locked = type(edited)._default_manager.select_for_update().get(pk=edited.pk)
    changes = staff_changes(stored=locked, edited=edited, fields=fields)
    if not changes:
        return locked
    if check is not None:
        check(locked, changes)
    edited.save(update_fields=list(changes))
    audit_record(
        action=action,
        actor=actor,
        organization=organization(locked),
        obj=edited,
        details={**details(locked), "changes": changes, "reason": "staff"},
    )
    return edited


def organization_kind_fixed_message(ties: Sequence[str]) -> str:
    return _(
        "The kind of this organization cannot change: it already has %(records)s, made for "
        "its present kind. Create a separate organization of the other kind instead."
    ) % {"records": ", ".join(ties)}


def organization_staff_change(
    *, organization: Organization, fields: Sequence[str], actor: User
) -> Organization:
    """Saves the `fields` staff changed on an organization in admin, audited before and after.

    Its kind stays once it holds anything made for that kind (organization_kind_ties): a
    customer with licenses or an Enterprise Flexible contract turned partner, or a partner
    holding delegations turned customer, would contradict what it holds.
    """
    return staff_edit_save(
        edited=organization,
        fields=fields,
        actor=actor,
        action="organization.changed",
        organization=lambda locked: locked,
        check=_organization_change_check,
    )


def _organization_change_check(locked: Organization, changes: dict[str, Any]) -> None:
    if "kind" in changes:
        ties = organization_kind_ties(locked)
        if ties:
            raise PortalError(organization_kind_fixed_message(ties))


@transaction.atomic
def user_active_staff_change(*, user: User, actor: User) -> list[str]:
    """Audits staff deactivating (or reactivating) a login in admin, which they do instead of
    deleting it: its memberships, contract access and history stay. Returns what the
    deactivation leaves undone, for staff to fix: each organization that now has no active
    administrator, and what apps say about this person leaving (the last super user of a
    contract). Those are warnings, not refusals: locking out a compromised or departed
    account cannot wait for a successor to be found."""
    warnings: list[str] = []
    orphaned: list[Organization] = []
    if not user.is_active:
        memberships = Membership.objects.filter(user=user).select_related("organization")
        for membership in memberships:
            organization = membership.organization
            others_admin = (
                Membership.objects.filter(
                    organization=organization, role=Membership.Role.ADMIN, user__is_active=True
                )
                .exclude(user=user)
                .exists()
            )
            if membership.is_admin and not others_admin:
                orphaned.append(organization)
                warnings.append(
                    _(
                        "%(organization)s has no other active administrator: make another "
                        "member administrator on the organization's page."
                    )
                    % {"organization": organization}
                )
            problem = membership_end_problem(organization=organization, users=[user])
            if problem:
                warnings.append(problem)
    audit_record(
        action="user.reactivated" if user.is_active else "user.deactivated",
        actor=actor,
        obj=user,
        details={
            "email": user.email,
            "without_administrator": [o.account_number for o in orphaned],
            "reason": "staff",
        },
    )
    return warnings


# What staff change on a login in admin that decides what it may do: audited (user.changed).
USER_ACCESS_FIELDS = ("email", "is_staff", "is_superuser", "groups", "user_permissions")


def user_access_staff_changed(
    *, user: User, actor: User, changes: dict[str, Any], password: bool = False
) -> None:
    """Audits staff changing who a login is or what it may do in admin (its address, staff or
    superuser status, groups, permissions; `password`: set a new password for it): the
    {field: {"from", "to"}} of the form, as staff_changes writes them."""
    if not changes and not password:
        return
    details: dict[str, Any] = {"email": user.email, "changes": changes}
    if password:
        details["password_set"] = True
    audit_record(action="user.changed", actor=actor, obj=user, details=details)


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


def _outbox_sendable(now: datetime) -> Q:
    """A sender may claim an email that is pending and due, or one a dead sender's lease left
    behind; never one still to be written (outbox_compose): it has no body yet. The batch
    claim's SQL (_OUTBOX_DUE_SQL) says the same for PostgreSQL."""
    due = Q(status=OutboundEmail.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=OutboundEmail.Status.SENDING, lease_expires_at__lt=now
    )
    return due & Q(compose__isnull=True)


def _outbox_claim(email_id: UUID | str, *, now: datetime) -> OutboundEmail | None:
    """Takes one due email for this sender with a conditional UPDATE, or None if not due."""
    claimed = (
        OutboundEmail.objects.filter(_outbox_sendable(now), pk=email_id).update(
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


def _outbox_failed(
    email: OutboundEmail, exc: Exception, *, now: datetime, lease: datetime | None = None
) -> str:
    gave_up = email.attempts >= settings.PORTAL_EMAIL_MAX_ATTEMPTS
    claimed = Q(lease_expires_at=lease) if lease else Q()
    OutboundEmail.objects.filter(claimed, pk=email.pk, status=OutboundEmail.Status.SENDING).update(
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


# -- in batches: many emails claimed by one statement and sent over one connection ----------


def outbox_batch_lease() -> timedelta:
    """How long a batch's claim lasts before another sender may take its emails over."""
    return timedelta(seconds=settings.OUTBOX_BATCH_SECONDS)


_OUTBOX_DUE_SQL = """
    ((status = 'pending' AND next_attempt_at <= %(now)s)
     OR (status = 'sending' AND lease_expires_at < %(now)s))
    AND compose IS NULL
"""


def outbox_compose(email_ids: Sequence[UUID | str], *, now: datetime) -> list[UUID]:
    """Writes the due emails among `email_ids` that their sender writes (queued with
    portal.emails.queue_email_later); returns `email_ids` with the rows they became.

    Each such row is written by the composer its spec names, in the language the request that
    queued it acted in: it becomes the first of the rendered emails, and the others (the other
    bodies and languages of the same email) are added beside it, due at the same time. A row
    is written once: it is locked while it is written, and one another sender is writing is
    skipped (that sender sends it). A composer that fails is recorded on the row and tried
    again with the send's backoff, then the row is marked failed for staff.
    """
    ids = [UUID(str(pk)) for pk in email_ids]
    waiting = list(
        OutboundEmail.objects.filter(
            pk__in=ids,
            compose__isnull=False,
            status=OutboundEmail.Status.PENDING,
            next_attempt_at__lte=now,
        ).values_list("pk", flat=True)
    )
    added: list[UUID] = []
    for pk in waiting:
        try:
            added += _outbox_compose_one(pk)
        except Exception as exc:  # recorded on the row, tried again later
            _outbox_compose_failed(pk, exc, now=now)
    return ids + added


def _outbox_compose_one(pk: UUID) -> list[UUID]:
    with transaction.atomic():
        locked = OutboundEmail.objects.select_for_update(
            skip_locked=db_connection.features.has_select_for_update_skip_locked
        )
        email = locked.filter(pk=pk, compose__isnull=False).first()
        if email is None:  # written meanwhile, or being written by another sender
            return []
        spec: dict[str, Any] = email.compose or {}
        with translation.override(spec.get("language") or settings.LANGUAGE_CODE):
            written = composer_for(spec)(spec)
        if not written:
            raise ValueError(f"Outbox email {pk}: its composer wrote no email (no recipient)")
        first, *others = written
        OutboundEmail.objects.filter(pk=pk).update(
            template=first.template,
            to=first.to,
            subject=first.subject,
            body_text=first.body_text,
            body_html=first.body_html,
            attachments=first.attachments,
            compose=None,
        )
        for other in others:
            other.created_at, other.next_attempt_at = email.created_at, email.next_attempt_at
        OutboundEmail.objects.bulk_create(others)
    return [other.pk for other in others]


def _outbox_compose_failed(pk: UUID, exc: Exception, *, now: datetime) -> None:
    email = OutboundEmail.objects.filter(pk=pk, compose__isnull=False).only("attempts").first()
    if email is None:
        return
    attempts = email.attempts + 1
    gave_up = attempts >= settings.PORTAL_EMAIL_MAX_ATTEMPTS
    OutboundEmail.objects.filter(pk=pk, compose__isnull=False).update(
        attempts=attempts,
        status=OutboundEmail.Status.FAILED if gave_up else OutboundEmail.Status.PENDING,
        next_attempt_at=now + outbox_backoff(attempts),
        last_error=repr(exc)[:2000],
    )
    # Loud either way: a composer that fails is a bug, not a mail server's bad day.
    logger.error(
        "Outbox email %s could not be written (attempt %d%s): %r",
        pk,
        attempts,
        ", no longer retried" if gave_up else "",
        exc,
        exc_info=exc,
    )


def _outbox_claim_batch(
    email_ids: Sequence[UUID | str], *, now: datetime, lease: datetime
) -> list[OutboundEmail]:
    """Takes the due emails among `email_ids` (at most OUTBOX_BATCH_SIZE) for this sender.

    The claim's lease is its token: a sender marks only the rows that still carry its lease,
    and another sender can take a row over only once that lease has passed.
    """
    ids = [UUID(str(pk)) for pk in email_ids]
    limit = settings.OUTBOX_BATCH_SIZE
    if db_connection.vendor != "postgresql":
        # SQLite (the embedded default) has no SKIP LOCKED; its one writer at a time makes
        # the plain read-then-update in one transaction a claim.
        due = _outbox_sendable(now)
        with transaction.atomic():
            picked = list(
                OutboundEmail.objects.filter(due, pk__in=ids)
                .order_by("next_attempt_at")
                .values_list("pk", flat=True)[:limit]
            )
            OutboundEmail.objects.filter(due, pk__in=picked).update(
                status=OutboundEmail.Status.SENDING,
                lease_expires_at=lease,
                attempts=F("attempts") + 1,
            )
            return list(
                OutboundEmail.objects.filter(
                    pk__in=picked, status=OutboundEmail.Status.SENDING, lease_expires_at=lease
                ).order_by("created_at")
            )
    # One statement: rows another sender is claiming right now are skipped, not waited for,
    # and a row it claimed meanwhile no longer matches when the lock is taken.
    table = OutboundEmail._meta.db_table
    sql = (
        f"UPDATE {table} SET status = 'sending', lease_expires_at = %(lease)s, "  # noqa: S608
        "attempts = attempts + 1 "
        f"WHERE id IN (SELECT id FROM {table} WHERE id = ANY(%(ids)s) AND {_OUTBOX_DUE_SQL} "
        "ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
        'RETURNING id, created_at, template, "to", subject, body_text, body_html, attachments, '
        "attempts"
    )
    with db_connection.cursor() as cursor:
        cursor.execute(sql, {"lease": lease, "ids": ids, "now": now, "limit": limit})
        rows = cursor.fetchall()
    emails = [
        OutboundEmail(
            id=pk,
            created_at=created_at,
            template=template,
            to=_json(to),
            subject=subject,
            body_text=body_text,
            body_html=body_html,
            attachments=_json(attachments),
            status=OutboundEmail.Status.SENDING,
            attempts=attempts,
            lease_expires_at=lease,
        )
        for (
            pk,
            created_at,
            template,
            to,
            subject,
            body_text,
            body_html,
            attachments,
            attempts,
        ) in rows
    ]
    return sorted(emails, key=lambda email: email.created_at)


def _json(value: Any) -> Any:
    # A raw cursor returns jsonb decoded, but a str if a driver or column type does not.
    return json.loads(value) if isinstance(value, str) else value


def _outbox_held(emails: list[OutboundEmail], *, lease: datetime) -> list[UUID]:
    """The emails of a batch still claimed under `lease` (the relay may have taken some over)."""
    return list(
        OutboundEmail.objects.filter(
            pk__in=[email.pk for email in emails],
            status=OutboundEmail.Status.SENDING,
            lease_expires_at=lease,
        ).values_list("pk", flat=True)
    )


def _outbox_renew(
    emails: list[OutboundEmail], *, lease: datetime, renewed: datetime
) -> list[OutboundEmail]:
    """Extends a batch's claim on the emails still to send; those it lost are dropped."""
    kept = set(_outbox_held(emails, lease=lease))
    OutboundEmail.objects.filter(pk__in=kept, lease_expires_at=lease).update(
        lease_expires_at=renewed
    )
    return [email for email in emails if email.pk in kept]


def outbound_emails_send(
    *, email_ids: Sequence[UUID | str], compose: bool = False
) -> dict[str, int]:
    """Sends the due emails among `email_ids` over one connection; counts the outcomes. With
    `compose`, those still to be written (queue_email_later) are written first (outbox_compose:
    one query more).

    The batch form of outbound_email_send, with the same guarantees: claimed before the mail
    server is contacted, sent outside any transaction, each failure recorded on its row (backoff,
    then "failed"), and at least once (a worker that dies mid-batch leaves a claim that lapses
    after OUTBOX_BATCH_SECONDS and the relay sends the rest again, with the same Message-IDs).
    Two statements for a batch that all goes well: the claim and the sent mark.
    """
    now = timezone.now()
    if compose:  # some may be still to write (queue_email_later): written first
        email_ids = outbox_compose(email_ids, now=now)
        size = settings.OUTBOX_BATCH_SIZE
        if len(email_ids) > size:  # more than a batch now: the rest in batches of their own
            hand_off_batches(email_ids[size:])
            email_ids = email_ids[:size]
    lease = now + outbox_batch_lease()
    emails = _outbox_claim_batch(email_ids, now=now, lease=lease)
    outcomes: Counter[str] = Counter(skipped=len(set(map(str, email_ids))) - len(emails))
    sent: list[UUID] = []
    seconds = outbox_batch_lease().total_seconds()
    started = time.monotonic()
    # A slow mail server: the claim is renewed halfway through its lease, and no email is
    # started once the batch has had a whole lease (well within the task's time limit); the
    # rest goes back to the outbox and is handed over again.
    renew_at, stop_at = started + seconds / 2, started + seconds
    mailer = get_connection()
    try:
        down = _mailer_open(mailer)
        while emails and down is None:
            if outcomes["sent"] and time.monotonic() >= stop_at:
                outcomes["released"] = _outbox_release(emails, lease=lease)
                break
            if time.monotonic() > renew_at:
                renewed = timezone.now() + outbox_batch_lease()
                _outbox_sent_many(sent, lease=lease)
                sent = []
                emails = _outbox_renew(emails, lease=lease, renewed=renewed)
                lease, renew_at = renewed, time.monotonic() + seconds / 2
                if not emails:
                    break
            email = emails.pop(0)
            try:
                deliver(email, connection=mailer)
            except Exception as exc:  # recorded on the row and retried with backoff
                outcomes[_outbox_failed(email, exc, now=now, lease=lease)] += 1
                if not isinstance(exc, AttachmentUnavailable):  # the server never heard of those
                    # A broken connection is not reused; one that cannot be opened again fails
                    # the rest of the batch at once instead of timing out once per email.
                    _mailer_close(mailer)
                    down = _mailer_open(mailer)
                continue
            sent.append(email.pk)
            outcomes["sent"] += 1
        if down is not None:
            for email in emails:
                outcomes[_outbox_failed(email, down, now=now, lease=lease)] += 1
    finally:
        _mailer_close(mailer)
        _outbox_sent_many(sent, lease=lease)
    return dict(outcomes)


def _outbox_release(emails: list[OutboundEmail], *, lease: datetime) -> int:
    """Gives a batch's unsent emails back, due now and without the attempt they did not get,
    and hands them over again (the relay's if the broker is down)."""
    released = _outbox_held(emails, lease=lease)
    OutboundEmail.objects.filter(pk__in=released, lease_expires_at=lease).update(
        status=OutboundEmail.Status.PENDING,
        lease_expires_at=None,
        attempts=F("attempts") - 1,
        next_attempt_at=timezone.now(),
    )
    hand_off_batches(released)
    return len(released)


def _mailer_open(mailer: BaseEmailBackend) -> Exception | None:
    """Opens the batch's connection to the mail server; the error if it cannot."""
    try:
        mailer.open()
    except Exception as exc:  # the server is down: every email of the batch is retried later
        return exc
    return None


def _mailer_close(mailer: BaseEmailBackend) -> None:
    # A connection that is already broken has nothing left to close.
    with suppress(Exception):
        mailer.close()


def _outbox_sent_many(email_ids: list[UUID], *, lease: datetime) -> None:
    if email_ids:
        OutboundEmail.objects.filter(
            pk__in=email_ids, status=OutboundEmail.Status.SENDING, lease_expires_at=lease
        ).update(
            status=OutboundEmail.Status.SENT,
            sent_at=timezone.now(),
            lease_expires_at=None,
            last_error="",
        )


# ---------------------------------------------------------------------------------------------
# Search indexes

# Every GIN index of the portal's schema (the trigram indexes the list's search reads) that the
# user may clean, with gin_clean_pending_list applied to each: the pages it moved into the index.
_GIN_MERGE_SQL = """
    SELECT COALESCE(SUM(gin_clean_pending_list(c.oid)), 0)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am am ON am.oid = c.relam
    WHERE am.amname = 'gin' AND c.relnamespace = current_schema()::regnamespace
      AND pg_has_role(c.relowner, 'USAGE')
"""


def gin_pending_lists_merge() -> int:
    """Merges the GIN indexes' pending lists into the indexes; the pages merged.

    New rows wait in a trigram index's pending list (up to 1 MB, migration 0013) so that bulk
    inserts stay fast, and every search reads that list in full until it is merged: 20,000
    licenses drawn down just before made the text search 1.24 x a page instead of 1.0. The beat
    runs this every PORTAL_GIN_MERGE_EVERY seconds, and bulk writes (a voucher conversion) queue
    it when they commit, so a search meets at most a short list. PostgreSQL only, and only the
    indexes the database user may clean (their owner's, as the user that ran the migrations is):
    a restricted runtime role leaves the others to autovacuum instead of failing every run.
    """
    if db_connection.vendor != "postgresql":
        return 0
    with db_connection.cursor() as cursor:
        cursor.execute(_GIN_MERGE_SQL)
        return int(cursor.fetchone()[0])


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
        transaction.on_commit(
            # One still to be written goes to the sender that writes it, as when it was queued.
            partial(hand_off_batches, [email.pk], compose=True)
            if email.compose is not None
            else partial(hand_off, email.pk),
            robust=True,
        )
        count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Channel partners: delegations


def admin_emails(organization: Organization) -> list[str]:
    """The addresses of an organization's administrators that its emails reach (active
    accounts: administrators_emailed, the rule the license email's copies follow too)."""
    return list(administrators_emailed(organization).values_list("user__email", flat=True))


# A partner acting for a partner would see what is the partner's own: its voucher batches and
# the customers that converted them, its Customers pages' data.
PARTNERS_DO_NOT_DELEGATE = gettext_lazy(
    "Only customer organizations delegate to a channel partner. Your organization is a partner: "
    "your customers delegate to it from their own Partners page."
)


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = [scope.value for scope in Scope if scope.value in set(scopes)]
    if not chosen:
        raise PortalError(_("Choose at least one thing the partner may do for you."))
    # The data a partner manages is that of the licenses it sees: alone, the scope gave nothing
    # (every registration page a 404, every key of an upload refused).
    if Scope.MANAGE_DATA in chosen and Scope.VIEW_LICENSES not in chosen:
        raise PortalError(
            _("“%(manage)s” is for the licenses the partner can see: choose “%(view)s” too.")
            % {
                "manage": SCOPE_LABELS[Scope.MANAGE_DATA],
                "view": SCOPE_LABELS[Scope.VIEW_LICENSES],
            }
        )
    return chosen


def _check_dates(*, starts_on: date, ends_on: date | None, today: date) -> None:
    if ends_on is not None and ends_on < max(starts_on, today):
        raise PortalError(_("The end date must be on or after the start date and today."))


def _delegation_email(
    template: str,
    delegation: Delegation,
    *,
    to: list[str],
    partner_to: list[str] | None = None,
    **extra: Any,
) -> None:
    """Emails `to` (one side of the delegation); with `partner_to`, the partner's side reads its
    own body of the same email (`for_partner`: its Customers page, not the customer's Partners
    page). Someone administering both organizations reads the customer's."""
    context = {
        "delegation": delegation,
        "customer": delegation.customer,
        "partner": delegation.partner,
        **extra,
    }
    if partner_to is None:
        queue_email(template=template, to=to, context=context)
        return
    # Each side's body, each recipient in their language (one lookup, one INSERT).
    queue_emails(
        emails=[
            EmailToQueue(template, recipients, {**context, "for_partner": for_partner})
            for recipients, for_partner in (
                (to, False),
                (sorted(set(partner_to) - set(to)), True),
            )
            if recipients
        ]
    )


@transaction.atomic
def delegation_grant(
    *,
    customer: Organization,
    partner_account_number: str,
    scopes: Iterable[str],
    actor: User,
    starts_on: date | None = None,
    ends_on: date | None = None,
) -> Delegation:
    """A customer delegates to the channel partner with that account number."""
    _require_admin(actor, customer)
    if customer.kind != Organization.Kind.CUSTOMER:
        raise PortalError(PARTNERS_DO_NOT_DELEGATE)
    partner = Organization.objects.filter(
        account_number=partner_account_number.strip(), kind=Organization.Kind.PARTNER
    ).first()
    # The same answer for "no such account" and "not a partner": account numbers are not secret,
    # but the kind of another organization is none of the customer's business.
    if partner is None or partner.pk == customer.pk:
        raise PortalError(
            _(
                "No channel partner has this account number. Check it with your partner; it is "
                "the number on their partner welcome letter."
            )
        )
    today = timezone.localdate()
    starts_on = starts_on or today
    # A delegation begins when it is granted, or later: a back-dated one would read (and be
    # audited) as in effect when nothing the partner did could have been.
    if starts_on < today:
        raise PortalError(_("The start date cannot be in the past: choose today or a later day."))
    _check_dates(starts_on=starts_on, ends_on=ends_on, today=today)
    # Grants of one customer one after another, under its row lock: a double click or two
    # administrators at once would otherwise both pass the check below, and the second insert
    # would fail on the one-live-per-pair constraint (a server error instead of the message).
    Organization.objects.select_for_update().filter(pk=customer.pk).first()
    # The grant emails the partner's administrators, with the customer's name in the body:
    # the same hourly limits as invitations, so that no account mails partners at will.
    refusal = invitations_refusal(actor=actor, organization=customer)
    if refusal:
        raise PortalError(refusal)
    if Delegation.objects.filter(
        customer=customer, partner=partner, status__in=Delegation.LIVE
    ).exists():
        raise PortalError(
            _("%(partner)s already acts for you: change its access in the list below.")
            % {"partner": partner.name}
        )
    delegation = Delegation.objects.create(
        customer=customer,
        partner=partner,
        scopes=_clean_scopes(scopes),
        starts_on=starts_on,
        ends_on=ends_on,
        status=Delegation.Status.ACTIVE if starts_on <= today else Delegation.Status.OFFERED,
        granted_by=actor,
    )
    audit_record(
        action="delegation.granted",
        actor=actor,
        organization=customer,
        obj=delegation,
        details=_delegation_details(delegation),
    )
    _delegation_email("delegation_granted", delegation, to=admin_emails(partner))
    return delegation


def _delegation_details(delegation: Delegation) -> dict[str, Any]:
    return {
        "partner": delegation.partner.account_number,
        "customer": delegation.customer.account_number,
        "scopes": list(delegation.scopes),
        "starts_on": delegation.starts_on.isoformat(),
        "ends_on": delegation.ends_on.isoformat() if delegation.ends_on else None,
    }


def _lock_live(delegation: Delegation) -> Delegation:
    locked = (
        Delegation.objects.select_for_update()
        .select_related("customer", "partner")
        .filter(pk=delegation.pk, status__in=Delegation.LIVE)
        .first()
    )
    if locked is None:
        raise PortalError(_("This delegation has already ended."))
    return locked


@transaction.atomic
def delegation_update(
    *, delegation: Delegation, scopes: Iterable[str], ends_on: date | None, actor: User
) -> Delegation:
    """The customer changes what the partner may do, or until when."""
    _require_admin(actor, delegation.customer)
    # Changes of one customer one after another: each emails the partner's administrators and
    # counts against the hourly invitation limits (as a grant does).
    Organization.objects.select_for_update().filter(pk=delegation.customer_id).first()
    locked = _lock_live(delegation)
    _check_dates(starts_on=locked.starts_on, ends_on=ends_on, today=timezone.localdate())
    before = _delegation_details(locked)
    locked.scopes = _clean_scopes(scopes)
    locked.ends_on = ends_on
    after = _delegation_details(locked)
    if before == after:
        return locked
    refusal = invitations_refusal(actor=actor, organization=locked.customer)
    if refusal:
        raise PortalError(refusal)
    locked.save(update_fields=["scopes", "ends_on"])
    audit_record(
        action="delegation.changed",
        actor=actor,
        organization=locked.customer,
        obj=locked,
        details={"from": before, "to": after},
    )
    _delegation_email("delegation_changed", locked, to=admin_emails(locked.partner))
    return locked


def _end(locked: Delegation, *, status: str, actor: User | None) -> list[Invitation]:
    """Ends a live delegation (locked), and withdraws the invitations the partner's users sent
    to join the customer (the claim of an account the partner opened): their right to invite
    came from the delegation. Returns the invitations withdrawn."""
    locked.status = status
    locked.ended_by = actor
    locked.ended_at = timezone.now()
    locked.save(update_fields=["status", "ended_by", "ended_at"])
    return _partner_invitations_withdraw(locked, actor=actor)


def _partner_invitations_withdraw(
    delegation: Delegation, *, actor: User | None
) -> list[Invitation]:
    """Withdraws the open invitations to join the customer that the partner's users sent and no
    longer may (_inviter_may_invite: not one of its administrators, no other live delegation),
    audited, and tells each invitee that their link no longer works.

    Accepting would refuse anyway ("The person who invited you can no longer invite people"),
    but an account the partner opened has no administrator to ask for a new invitation: the
    link must stop offering "Accept", and the invitee must hear why."""
    invitations = list(
        Invitation.objects.select_for_update(of=("self",))
        .filter(
            organization_id=delegation.customer_id,
            invited_by__memberships__organization_id=delegation.partner_id,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        .select_related("invited_by")
    )
    withdrawn = _invitations_withdraw_audited(
        [invitation for invitation in invitations if not _inviter_may_invite(invitation)],
        actor=actor,
        organization=delegation.customer,
        reason=f"delegation.{delegation.status}",
    )
    for invitation in withdrawn:
        _delegation_email(
            "customer_claim_withdrawn", delegation, to=[invitation.email], invitation=invitation
        )
    return withdrawn


@transaction.atomic
def delegation_revoke(*, delegation: Delegation, actor: User) -> Delegation:
    """The customer ends a delegation; the partner loses access on its next request."""
    _require_admin(actor, delegation.customer)
    locked = _lock_live(delegation)
    _end(locked, status=Delegation.Status.REVOKED, actor=actor)
    audit_record(
        action="delegation.revoked",
        actor=actor,
        organization=locked.customer,
        obj=locked,
        details=_delegation_details(locked),
    )
    _delegation_email(
        "delegation_revoked",
        locked,
        to=admin_emails(locked.customer),
        partner_to=admin_emails(locked.partner),
    )
    return locked


@transaction.atomic
def delegation_decline(*, delegation: Delegation, actor: User) -> Delegation:
    """The partner declines to act for the customer."""
    _require_admin(actor, delegation.partner)
    locked = _lock_live(delegation)
    withdrawn = _end(locked, status=Delegation.Status.DECLINED, actor=actor)
    audit_record(
        action="delegation.declined",
        actor=actor,
        organization=locked.partner,
        acting_for=locked.customer,
        obj=locked,
        details=_delegation_details(locked),
    )
    customer_admins = admin_emails(locked.customer)
    _delegation_email(
        "delegation_declined",
        locked,
        to=customer_admins,
        partner_to=admin_emails(locked.partner),
        # An account the partner opened and nobody claimed yet: nobody at the customer reads
        # this, and nobody can use the account any more (its claim was withdrawn above).
        unclaimed=not customer_admins,
        withdrawn=[invitation.email for invitation in withdrawn],
    )
    return locked


@transaction.atomic
def delegation_expire_lapsed(*, delegation: Delegation) -> bool:
    """Marks a delegation past its end date expired (audited, emailed); False if already done."""
    today = timezone.localdate()
    updated = Delegation.objects.filter(
        pk=delegation.pk, status__in=Delegation.LIVE, ends_on__lt=today
    ).update(status=Delegation.Status.EXPIRED, ended_at=timezone.now())
    if not updated:
        return False
    expired = Delegation.objects.select_related("customer", "partner").get(pk=delegation.pk)
    _partner_invitations_withdraw(expired, actor=None)
    audit_record(
        action="delegation.expired",
        organization=expired.customer,
        obj=expired,
        details=_delegation_details(expired),
    )
    _delegation_email(
        "delegation_expired",
        expired,
        to=admin_emails(expired.customer),
        partner_to=admin_emails(expired.partner),
    )
    return True


def delegations_refresh() -> dict[str, int]:
    """Daily: delegations whose start day came become active; those past their end expire."""
    today = timezone.localdate()
    activated = Delegation.objects.filter(
        status=Delegation.Status.OFFERED, starts_on__lte=today
    ).update(status=Delegation.Status.ACTIVE)
    lapsed = Delegation.objects.filter(status__in=Delegation.LIVE, ends_on__lt=today)
    expired = sum(delegation_expire_lapsed(delegation=d) for d in lapsed.iterator())
    return {"activated": activated, "expired": expired}


@transaction.atomic
def customer_account_create(
    *,
    partner: Organization,
    actor: User,
    name: str,
    address: str,
    country: str,
    contact_name: str,
    contact_email: str,
) -> Delegation:
    """A partner opens the account of a customer that has none, as its delegate (all scopes).

    The customer's contact is invited to claim the account as its administrator; from then on
    the customer controls the delegation like any other.
    """
    if (
        partner.kind != Organization.Kind.PARTNER
        or not Membership.objects.filter(user=actor, organization=partner).exists()
    ):
        raise PortalError(_("Only a channel partner's users can add customers."))
    # The contact gets an invitation email: the same hourly limits as any invitation, counted
    # one request after another under the partner's row lock.
    Organization.objects.select_for_update().filter(pk=partner.pk).first()
    # A double click, or the page submitted again (one after another under the lock): the
    # account this partner already opened for that name and contact, still unclaimed, is the
    # one, not a second account its contact would never claim.
    pending = (
        Invitation.objects.filter(
            organization__name__iexact=name.strip(),
            organization__delegations_granted__partner=partner,
            organization__delegations_granted__status__in=Delegation.LIVE,
            email=contact_email.strip().lower(),
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        .select_related("organization")
        .first()
    )
    if pending is not None:
        raise PortalError(
            _(
                "You already added %(customer)s with %(email)s as its administrator: it is on "
                "your Customers page, awaiting its administrator."
            )
            % {"customer": pending.organization.name, "email": pending.email}
        )
    refusal = invitations_refusal(actor=actor, organization=partner)
    if refusal:
        raise PortalError(refusal)
    customer = Organization.objects.create(
        name=name.strip(), address=address.strip(), country=country.strip()
    )
    delegation = Delegation.objects.create(
        customer=customer,
        partner=partner,
        scopes=[scope.value for scope in Scope],
        status=Delegation.Status.ACTIVE,
        granted_by=actor,
    )
    for action, obj, details in (
        ("organization.created", customer, {"name": customer.name, "by_partner": True}),
        ("delegation.granted", delegation, _delegation_details(delegation)),
    ):
        audit_record(
            action=action,
            actor=actor,
            organization=partner,
            acting_for=customer,
            obj=obj,
            details=details,
        )
    _customer_admin_invite(delegation, actor=actor, email=contact_email, name=contact_name)
    return delegation


def _customer_admin_invite(
    delegation: Delegation, *, actor: User, email: str, name: str
) -> Invitation:
    """Invites `email` to claim the customer account a partner added, as its administrator:
    the invitation, its audit event (the partner acting for the customer) and the email."""
    invitation = Invitation.objects.create(
        organization=delegation.customer,
        email=email.strip().lower(),
        role=Membership.Role.ADMIN,
        invited_by=actor,
    )
    audit_record(
        action="invitation.sent",
        actor=actor,
        organization=delegation.partner,
        acting_for=delegation.customer,
        obj=invitation,
        details={"email": invitation.email, "role": invitation.role},
    )
    _delegation_email(
        "customer_account_created",
        delegation,
        to=[invitation.email],
        invitation=invitation,
        contact_name=name.strip(),
        inviter=actor,
    )
    return invitation


@transaction.atomic
def customer_invitation_resend(
    *, delegation: Delegation, actor: User, contact_email: str, contact_name: str = ""
) -> Invitation:
    """The partner invites the administrator of a customer that has none again.

    A customer account a partner added has no member until its contact claims it. If the
    contact's address was mistyped or the link lapsed, nobody at the customer can ask for a new
    one: the partner acting for it invites again, and earlier invitations stop working (only the
    new address can claim the account). Once the customer has a member, it invites its own
    people and this is refused.
    """
    partner = delegation.partner
    if (
        partner.kind != Organization.Kind.PARTNER
        or not Membership.objects.filter(user=actor, organization=partner).exists()
    ):
        raise PortalError(_("Only a channel partner's users can add customers."))
    # The same hourly limits as any invitation, counted under the partner's row lock.
    Organization.objects.select_for_update().filter(pk=partner.pk).first()
    locked = _lock_live(delegation)
    if not locked.is_effective(today=timezone.localdate()):
        raise PortalError(_("This delegation has already ended."))
    customer = locked.customer
    # The open invitations first: a claim in progress holds its invitation's lock, so it is
    # waited for and then seen as a member below.
    open_invitations = list(
        Invitation.objects.select_for_update().filter(
            organization=customer, accepted_at__isnull=True, revoked_at__isnull=True
        )
    )
    if Membership.objects.filter(organization=customer).exists():
        raise PortalError(
            _(
                "%(customer)s has an administrator now: ask them to invite the people it needs "
                "from its Members page."
            )
            % {"customer": customer.name}
        )
    refusal = invitations_refusal(actor=actor, organization=partner)
    if refusal:
        raise PortalError(refusal)
    Invitation.objects.filter(pk__in=[i.pk for i in open_invitations]).update(
        revoked_at=timezone.now()
    )
    return _customer_admin_invite(locked, actor=actor, email=contact_email, name=contact_name)
