"""Limits on what can be tried or sent: typed codes, and emails sent to people on request.

Typed codes (serial numbers, upgrade notification IDs, voucher codes) are guessable only by
trying many, so every path that looks one up goes through `CodeGuard`: it refuses while a
budget of failed attempts is used up, and counts each refused code. Counting failures, not
attempts, lets honest typists retry freely while an enumeration stops after a handful of misses.
Three budgets apply over a sliding 10-minute window:

- per user (PORTAL_SERIAL_ATTEMPTS, 10): one account's guesses;
- per client IP (PORTAL_CODE_ATTEMPTS_PER_IP, 30): new accounts do not buy new guesses;
- for the whole portal (PORTAL_CODE_ATTEMPTS_GLOBAL, 300): many accounts on many addresses
  together cannot enumerate short legacy serials. Exhausting it blocks code entry for everyone
  until the window moves on, a denial of service accepted in exchange (it is logged as an
  error and audited, and set well above what honest customers mistype).

The budgets live in the database (FailedCodeAttempt), not the cache: they hold across processes
and while Redis is down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from django import forms
from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Func, Model, Q, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import AuditEvent, FailedCodeAttempt, Organization, User
from .requestcontext import address_block, get_client_ip

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Model)

PERIOD = timedelta(minutes=10)
KEEP = timedelta(days=1)


@dataclass(frozen=True)
class Budget:
    exhausted: bool
    minutes_left: int


def support_contact() -> SafeString:
    """Whom to contact, as a sentence with links (PORTAL_SUPPORT_URL / PORTAL_SUPPORT_EMAIL)."""
    url = settings.PORTAL_SUPPORT_URL
    email = settings.PORTAL_SUPPORT_EMAIL
    links = []
    if url:
        links.append((url, _("customer care")))
    if email:
        links.append((f"mailto:{email}", email))
    if not links:
        return conditional_escape(_("If you need help, contact customer care."))
    joined = format_html_join(_(" or "), '<a href="{}">{}</a>', links)
    # The sentence is escaped first, then the links go in: a translation cannot inject markup.
    return mark_safe(
        conditional_escape(_("If you need help, contact %(contact)s.")) % {"contact": joined}
    )


def code_limit_message(minutes: int) -> SafeString:
    """The one message for a used-up budget, whichever code was typed: when, and whom to ask."""
    wait = ngettext(
        "Too many codes were not recognised. For your security, try again in %(minutes)d minute.",
        "Too many codes were not recognised. For your security, try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    return format_html("{} {}", wait, support_contact())


def login_lockout_message() -> SafeString:
    """allauth's "too many failed login attempts", saying whom to contact."""
    return format_html(
        "{} {}",
        _("Too many failed login attempts. For your security, try again in a few minutes."),
        support_contact(),
    )


class CodeAttemptsExhausted(forms.ValidationError):
    """Raised by CodeGuard.check: a form shows it as a field error, a view as a message."""

    def __init__(self, minutes: int) -> None:
        super().__init__(code_limit_message(minutes), code="rate_limited")
        self.minutes = minutes


# The attributes `CodeGuard.counted` puts on the rows it reads: "guard_user", "guard_ip"…
COUNTED = "guard_"


class CodeGuard:
    """The failed-attempt guard of every typed code.

    `check()` before looking a code up, `failed()` after a lookup that refused it. `action` names
    the audit event written when an attempt uses a budget up ("serial.rate_limited"…).

    A lookup may carry its own check instead: `counted(queryset)` reads the budgets' counts in
    the lookup's query, and `check_counted(row)` refuses the row it found while a budget is used
    up, as `check()` would have before the lookup. One round trip instead of two on the path
    honest typists take. A lookup that finds nothing, or refuses what it found, calls `check()`
    before saying why: nothing is said about a code while a budget is used up.
    """

    def __init__(
        self, request: HttpRequest, *, organization: Organization | None, action: str
    ) -> None:
        self.request = request
        self.organization = organization
        self.action = action
        user = getattr(request, "user", None)
        self.user: User | None = user if user is not None and user.is_authenticated else None
        self.ip: str = address_block(getattr(request, "client_ip", None) or get_client_ip(request))

    def _scopes(self) -> dict[str, tuple[Q, int]]:
        scopes = {
            "ip": (Q(ip=self.ip), settings.PORTAL_CODE_ATTEMPTS_PER_IP),
            "global": (Q(), settings.PORTAL_CODE_ATTEMPTS_GLOBAL),
        }
        if self.user is not None:
            scopes["user"] = (Q(user=self.user), settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES)
        return scopes

    def _counts(self, window: QuerySet[FailedCodeAttempt]) -> dict[str, int]:
        return window.aggregate(
            **{name: Count("pk", filter=where) for name, (where, _limit) in self._scopes().items()}
        )

    def counted(self, queryset: QuerySet[M]) -> QuerySet[M]:
        """`queryset` with each budget's count of failures in the window beside every row."""
        window = FailedCodeAttempt.objects.filter(at__gt=timezone.now() - PERIOD).order_by()
        # COUNT as a plain function, not an aggregate: no GROUP BY, one row even when none fail.
        return queryset.annotate(
            **{
                f"{COUNTED}{name}": Subquery(
                    window.filter(where).annotate(n=Func(F("pk"), function="COUNT")).values("n")
                )
                for name, (where, _limit) in self._scopes().items()
            }
        )

    def check_counted(self, row: Model) -> None:
        """Refuses (CodeAttemptsExhausted) a row read by `counted` while a budget is used up."""
        if any(
            getattr(row, f"{COUNTED}{name}") >= limit
            for name, (_where, limit) in self._scopes().items()
        ):
            self.check()  # when it frees an attempt: read once more, on this rare path only

    def budget(self, *, now: datetime | None = None) -> Budget:
        """Whether any budget is used up, and when the tightest one frees an attempt."""
        now = now or timezone.now()
        window = FailedCodeAttempt.objects.filter(at__gt=now - PERIOD)
        counts = self._counts(window)
        waits = []
        for name, (where, limit) in self._scopes().items():
            if counts[name] >= limit:
                # The budget frees up when enough of its failures leave the window.
                oldest = (
                    window.filter(where)
                    .order_by("at")
                    .values_list("at", flat=True)[counts[name] - limit]
                )
                waits.append((oldest + PERIOD - now).total_seconds())
        if not waits:
            return Budget(exhausted=False, minutes_left=0)
        return Budget(exhausted=True, minutes_left=max(1, math.ceil(max(waits) / 60)))

    def check(self) -> None:
        """Refuses (CodeAttemptsExhausted) while a budget is used up."""
        budget = self.budget()
        if budget.exhausted:
            raise CodeAttemptsExhausted(budget.minutes_left)

    def failed(self) -> Budget:
        """Counts one refused code; the attempt that uses a budget up is audited."""
        now = timezone.now()
        FailedCodeAttempt.objects.filter(at__lt=now - KEEP).delete()
        FailedCodeAttempt.objects.create(at=now, user=self.user, ip=self.ip, action=self.action)
        counts = self._counts(FailedCodeAttempt.objects.filter(at__gt=now - PERIOD))
        for name, (_where, limit) in self._scopes().items():
            if counts[name] == limit:
                self._audit_exhausted(name)
        return self.budget(now=now)

    def _audit_exhausted(self, scope: str) -> None:
        from .services import audit_record

        if scope == "global":
            logger.error("The portal-wide budget of failed code attempts is used up")
        audit_record(
            action=self.action,
            actor=self.user,
            organization=self.organization,
            details={"ip": self.ip, "scope": scope},
        )


# ---------------------------------------------------------------------------------------------
# Emails to people on a user's say-so: invitations and shares


def people_emailed(
    *, since: datetime, actor: User | None = None, organization: Organization | None = None
) -> int:
    """How many invitation and share emails the actor (or organization) sent since `since`.

    Counted from the audit trail: each invitation sent is one event; shares count one per
    recipient, however many licenses were shared with them at once.
    """
    events = AuditEvent.objects.filter(created_at__gte=since)
    if actor is not None:
        events = events.filter(actor=actor)
    if organization is not None:
        events = events.filter(organization=organization)
    # An Enterprise Flexible contract's invitation is one too (enterprise_flex.services). A
    # customer's delegation granted or changed emails the partner's administrators: one each.
    # (A partner adding a customer records a grant acting for it, which emails no partner: its
    # invitation is what counts.)
    invitations = events.filter(
        Q(action__in=("invitation.sent", "ef.invitation_sent"))
        | Q(action__in=("delegation.granted", "delegation.changed"), acting_for__isnull=True)
    ).count()
    shares = events.filter(action="license.shared").values("details__email").distinct().count()
    return invitations + shares


def invitations_refusal(
    *, actor: User, organization: Organization, now: datetime | None = None
) -> str | None:
    """A translated refusal when the actor or organization emailed too many people this hour.

    The callers (invitation and share services) lock the organization row first, so concurrent
    requests of one organization are counted one after the other.
    """
    since = (now or timezone.now()) - timedelta(hours=1)
    if people_emailed(since=since, actor=actor) >= settings.PORTAL_INVITES_PER_USER_PER_HOUR:
        return _(
            "You have sent many invitations and shares in the last hour. For everyone's "
            "security, wait an hour before sending more, or contact customer care."
        )
    if (
        people_emailed(since=since, organization=organization)
        >= settings.PORTAL_INVITES_PER_ORG_PER_HOUR
    ):
        return _(
            "Your organization has sent many invitations and shares in the last hour. For "
            "everyone's security, wait an hour before sending more, or contact customer care."
        )
    return None


# ---------------------------------------------------------------------------------------------
# Emails to one address, whichever license or organization asks for them

# The first key of pg_advisory_xact_lock(int, int) for the locks below, one per address (the
# second key); the one-bigint advisory locks (licensing.services.reminders) are another space.
ADDRESS_LOCKS = 0x4D41494C  # "MAIL"


def address_serialize(address: str) -> None:
    """Makes requests that email `address` from different rows count one after the other.

    Row locks serialise what one license or one organization sends; two licenses, or two
    organizations, that name the same address would each count the other's emails as unsent.
    PostgreSQL: a lock on the address until the transaction ends (two addresses whose hashes
    collide only wait for each other). SQLite lets one transaction write at a time and refuses
    to commit a write based on a read another writer made stale ("database is locked"): the
    second request fails instead of sending past the limit.
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(address.strip().lower().encode()).digest()
    key = int.from_bytes(digest[:4], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADDRESS_LOCKS, key])


def address_budget(*, address: str, action: str, limit: int, now: datetime | None = None) -> Budget:
    """Whether `limit` `action` events of the last hour emailed `address`, and if so in how many
    minutes one of them leaves the hour.

    Counted from the audit trail, whose events name the address in `details.contact` or list
    it in `details.copied` (lower case), across licenses and organizations. Call
    address_serialize first.
    """
    now = now or timezone.now()
    address = address.strip().lower()
    latest = list(
        AuditEvent.objects.filter(
            # The list's JSON text holds the address between quotes: the whole address, not a
            # longer one ending with it. (JSON containment, @>, is PostgreSQL's alone.)
            Q(details__contact=address) | Q(details__copied__icontains=json.dumps(address)),
            action=action,
            created_at__gte=now - timedelta(hours=1),
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if limit > 0 and len(latest) < limit:
        return Budget(exhausted=False, minutes_left=0)
    # One more may go when the oldest of the `limit` latest leaves the hour.
    oldest = latest[-1] if latest else now - timedelta(hours=1)
    wait = (oldest + timedelta(hours=1) - now).total_seconds()
    return Budget(exhausted=True, minutes_left=max(1, math.ceil(wait / 60)))
