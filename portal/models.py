from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

INVITATION_LIFETIME = timedelta(days=14)


class UserManager(DjangoUserManager["User"]):
    """Users log in with their email address; there is no username."""

    use_in_migrations = True

    def _create_user_email(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user_email(email, password, **extra)

    def create_superuser(  # type: ignore[override]
        self, email: str, password: str | None = None, **extra: Any
    ) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user_email(email, password, **extra)


class User(AbstractUser):
    username = None  # type: ignore[assignment]
    email = models.EmailField(_("email address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=200, blank=True)
    # The language emails to this user are written in when someone else or a scheduled job
    # sends them (a share, an invitation, a reminder): the one they last chose on the portal.
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_(
            "Emails sent to this user by others or by scheduled jobs are written in this "
            "language: the one they last chose on the portal. Empty: the sender's language."
        ),
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email


def generate_account_number() -> str:
    # Eight digits, read over the phone to support; unguessability is not needed here.
    return f"{secrets.randbelow(90_000_000) + 10_000_000}"


class Organization(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        PARTNER = "partner", _("Partner")

    account_number = models.CharField(
        _("account number"), max_length=12, unique=True, default=generate_account_number
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=Kind.choices,
        default=Kind.CUSTOMER,
        help_text=_(
            "Fixed once the organization holds anything made for its kind: licenses, "
            "delegations, contracts, voucher batches."
        ),
    )
    # Capped: it is copied into emails and pages; 500 characters hold any address.
    address = models.TextField(_("address"), blank=True, max_length=500)
    country = CountryField(_("country"), blank=True)
    # Free text typed before countries were codes, which no country matched (portal.countries):
    # kept for staff to read and fix, never dropped.
    country_legacy = models.CharField(
        _("country as typed before"), max_length=100, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_number})"


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", _("Administrator")
        MEMBER = "member", _("Member")

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("organization"),
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="portal_membership_one_per_user_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


def generate_invitation_token() -> str:
    return secrets.token_urlsafe(32)


class Invitation(models.Model):
    """An organization admin's invitation for an email address to join the organization."""

    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="invitations",
        verbose_name=_("organization"),
    )
    email = models.EmailField(_("email address"))
    role = models.CharField(
        _("role"), max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    token = models.CharField(max_length=64, unique=True, default=generate_invitation_token)
    invited_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [
            # One open invitation per address and organization; re-inviting re-sends it.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="portal_invitation_one_open_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization}"

    @property
    def expires_at(self) -> datetime:
        """When the link stops working: a re-sent invitation keeps its first date (its email
        says this date, not a lifetime counted from the re-send)."""
        return self.created_at + INVITATION_LIFETIME

    def is_open(self, *, now: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and now < self.expires_at


class Delegation(models.Model):
    """A customer organization's delegation of its portal use to a channel partner.

    The partner's users act for the customer within `scopes` (portal.policy.Scope values) from
    `starts_on` until `ends_on` (inclusive) or until the customer revokes it. Whether a delegation
    is in effect is decided from these fields on every request (portal.policy), never cached.
    """

    class Status(models.TextChoices):
        OFFERED = "offered", _("Offered")  # granted, starting on a later date
        ACTIVE = "active", _("Active")
        DECLINED = "declined", _("Declined")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    LIVE = (Status.OFFERED, Status.ACTIVE)

    customer = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="delegations_granted",
        verbose_name=_("customer"),
    )
    partner = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        related_name="delegations_received",
        verbose_name=_("partner"),
    )
    scopes = models.JSONField(_("scopes"), default=list)
    starts_on = models.DateField(_("starts on"), default=timezone.localdate)
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    granted_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("granted by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    # Who ended it and when: the customer revoking, the partner declining, or expiry (no user).
    ended_by = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ended by"),
    )
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delegation")
        verbose_name_plural = _("delegations")
        ordering = ["-created_at"]
        constraints = [
            # One live delegation per customer and partner: granting again changes that one.
            models.UniqueConstraint(
                fields=["customer", "partner"],
                condition=models.Q(status__in=["offered", "active"]),
                name="portal_delegation_one_live_per_pair",
            ),
            models.CheckConstraint(
                condition=~models.Q(customer=models.F("partner")),
                name="portal_delegation_not_to_itself",
            ),
            models.CheckConstraint(
                condition=models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="portal_delegation_dates_ordered",
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "status"]),
            models.Index(fields=["customer", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.customer} → {self.partner} ({self.status})"

    def is_effective(self, *, today: date) -> bool:
        """Whether the partner may act for the customer today."""
        return (
            self.status in self.LIVE
            and self.starts_on <= today
            and (self.ends_on is None or today <= self.ends_on)
        )

    def has_lapsed(self, *, today: date) -> bool:
        """Live on paper but past its end date: due to be marked expired."""
        return self.status in self.LIVE and self.ends_on is not None and self.ends_on < today


class AuditEvent(models.Model):
    """Append-only record of a state change that matters: who, for which organization, what."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(
        _("created at"), default=timezone.now, db_index=True, editable=False
    )
    actor = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_email = models.CharField(_("actor email"), max_length=254, blank=True)
    organization = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("organization"),
    )
    acting_for = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acting for"),
    )
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object ID"), max_length=64, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at"]
        # An object's history is looked up by type and id together. The action's index is declared
        # here, not with db_index=True, which on PostgreSQL adds a second, pattern-ops index for
        # prefix LIKE that nothing runs (the admin's search is a substring match); the same went
        # for object_id, whose own index the first one covers. Every event INSERT paid for them.
        indexes = [
            models.Index(fields=["object_type", "object_id", "created_at"]),
            models.Index(fields=["action"], name="portal_auditevent_action"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("Audit events are append-only.")


class OutboundEmail(models.Model):
    """The email outbox: written in the transaction that caused the email, relayed by a task.

    A broker that is down when the transaction commits therefore delays an email, never loses it:
    the periodic relay picks up whatever is due. Delivery is at least once: a row is claimed
    (PENDING -> SENDING, with a lease) by a conditional UPDATE, sent outside any transaction,
    then marked SENT; a sender that dies between sending and marking leaves a lease that
    expires, and the message goes out again with the same Message-ID (the row's id), so mail
    programs can recognise the duplicate.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(
        _("created at"), default=timezone.now, db_index=True, editable=False
    )
    template = models.CharField(_("template"), max_length=100)
    to = models.JSONField(_("recipients"), default=list)
    subject = models.CharField(_("subject"), max_length=300)
    body_text = models.TextField(_("text body"))
    body_html = models.TextField(_("HTML body"), blank=True)
    # [{"filename": ..., "content": <base64>, "mimetype": ...}]: license files, a few KB each.
    # A large attachment made from committed rows is named instead of held, {"filename": ...,
    # "mimetype": ..., "source": ..., "ref": ...}, and built when sent (portal.emails.deliver).
    attachments = models.JSONField(_("attachments"), default=list, blank=True)
    # An email written by the sender instead of the transaction that caused it: what a
    # composer registered with portal.emails.composer_register builds it from, {"composer":
    # ..., ...}. Empty once written: the row then holds the first of the emails it became
    # (portal.services.outbox_compose).
    compose = models.JSONField(_("to be written from"), null=True, blank=True, editable=False)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # When the relay may try a PENDING row again (backoff after a failure).
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    # Until when a SENDING row belongs to the sender that claimed it.
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbound email")
        verbose_name_plural = _("outbound emails")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["status", "next_attempt_at"], name="portal_outbox_due"),
        ]

    def __str__(self) -> str:
        if self.compose is not None:  # no subject nor recipients until its sender writes it
            return f"{self.template} {_('(written by the worker when it sends it)')}"
        return f"{self.subject} → {', '.join(self.to)}"


class FailedCodeAttempt(models.Model):
    """One typed code (serial, notification ID, voucher) that was looked up and refused.

    The failed-attempt budgets (portal.ratelimit) count these rows per user, per client IP and
    for the whole portal over a sliding window. They live in the database, not the cache, so the
    budget holds across processes and while Redis is down.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    ip = models.GenericIPAddressField()
    action = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("failed code attempt")
        verbose_name_plural = _("failed code attempts")
        indexes = [
            models.Index(fields=["user", "at"], name="portal_failedcode_user_at"),
            models.Index(fields=["ip", "at"], name="portal_failedcode_ip_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.ip}"
