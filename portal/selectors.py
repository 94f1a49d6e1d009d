from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import (
    INVITATION_LIFETIME,
    AuditEvent,
    Delegation,
    Invitation,
    Membership,
    Organization,
    User,
)
from .policy import (
    MEMBERSHIPS_ATTR,
    OrganizationAccess,
    delegated_access,
    effective_delegations,
)

SESSION_ORGANIZATION_KEY = "portal:organization"
# The customer a partner's user acts for, chosen on the Customers page.
SESSION_ACTING_FOR_KEY = "portal:acting-for"


MEMBERSHIP_ORDER = ("organization__name", "organization_id")


def memberships_of(user: User) -> QuerySet[Membership]:
    """The user's memberships with their organizations, in a stable order."""
    return (
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by(*MEMBERSHIP_ORDER)
    )


def user_memberships(user: User) -> list[Membership]:
    """The user's memberships as memberships_of orders them, read once per request: the ones
    the authentication middleware loaded with the user, or one query remembered on the user."""
    if not user.is_authenticated:
        return []
    cached: list[Membership] | None = getattr(user, MEMBERSHIPS_ATTR, None)
    if cached is None:
        cached = list(memberships_of(user))
        setattr(user, MEMBERSHIPS_ATTR, cached)
    return cached


def membership_in(user: User, organization: Organization) -> Membership | None:
    """The user's membership of `organization`, from user_memberships."""
    return next((m for m in user_memberships(user) if m.organization_id == organization.pk), None)


def acting_membership(request: HttpRequest) -> Membership | None:
    """The user's own organization the request works from: the one chosen with the switcher
    when the user belongs to several. See acting_context for the organization it acts in."""
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = user_memberships(user)  # type: ignore[arg-type]
    if not memberships:
        return None
    chosen = request.session.get(SESSION_ORGANIZATION_KEY)
    for membership in memberships:
        if membership.organization_id == chosen:
            return membership
    return memberships[0]


@dataclass(frozen=True)
class ActingContext:
    """Which organization a request acts in, and how the user reaches it."""

    membership: Membership  # the user's own membership (the partner's, when acting for a customer)
    organization: Organization  # whose data the request reads and writes
    access: OrganizationAccess
    delegation: Delegation | None = None
    # The delegation the session was acting under that is no longer in effect (revoked, declined,
    # expired): the request is refused and the partner sent back to its Customers page.
    ended: Delegation | None = None


def acting_context(request: HttpRequest) -> ActingContext | None:
    """The one place that decides which organization a request acts in.

    The user's own organization, or the one chosen with the switcher; for a partner's user who
    chose "Act for this customer", the customer, while its delegation is in effect. Read from the
    database on every request, so a revocation takes effect on the partner's next request.
    """
    membership = acting_membership(request)
    if membership is None:
        return None
    own = ActingContext(
        membership=membership,
        organization=membership.organization,
        access=OrganizationAccess(organization=membership.organization, role=membership.role),
    )
    customer_id = request.session.get(SESSION_ACTING_FOR_KEY)
    if customer_id is None or membership.organization.kind != Organization.Kind.PARTNER:
        return own
    delegation = (
        Delegation.objects.filter(partner=membership.organization, customer_id=customer_id)
        .select_related("customer", "partner")
        .order_by("-created_at")
        .first()
    )
    if delegation is None or not delegation.is_effective(today=timezone.localdate()):
        return ActingContext(
            membership=own.membership,
            organization=own.organization,
            access=own.access,
            ended=delegation,
        )
    return ActingContext(
        membership=membership,
        organization=delegation.customer,
        access=delegated_access(delegation),
        delegation=delegation,
    )


def partner_customers(*, partner: Organization, query: str = "") -> QuerySet[Delegation]:
    """The partner's customers: delegations in effect, searchable by name or account number.

    Each carries `awaiting_admin`: the customer has no member yet (an account the partner added,
    not claimed), so the partner may invite its administrator again.
    """
    delegations = (
        effective_delegations()
        .filter(partner=partner)
        .select_related("customer")
        .annotate(
            awaiting_admin=~Exists(Membership.objects.filter(organization=OuterRef("customer")))
        )
    )
    query = query.strip()
    if query:
        delegations = delegations.filter(
            Q(customer__name__icontains=query) | Q(customer__account_number__startswith=query)
        )
    return delegations.order_by("customer__name", "customer_id")


def partner_offers(*, partner: Organization) -> QuerySet[Delegation]:
    """Delegations granted to the partner that start on a later day: listed on its Customers
    page, to be declined, before the partner can act on them."""
    return (
        Delegation.objects.filter(
            partner=partner, status__in=Delegation.LIVE, starts_on__gt=timezone.localdate()
        )
        .select_related("customer")
        .order_by("starts_on", "customer__name", "pk")
    )


def delegations_of_customer(*, customer: Organization) -> QuerySet[Delegation]:
    """Every delegation the customer granted, current ones first."""
    return (
        Delegation.objects.filter(customer=customer)
        .select_related("partner", "granted_by", "ended_by")
        .order_by("status", "-created_at")
    )


def delegation_of_customer(*, customer: Organization, pk: int) -> Delegation | None:
    return delegations_of_customer(customer=customer).filter(pk=pk).first()


def delegation_of_partner(*, partner: Organization, pk: int) -> Delegation | None:
    """One live delegation to the partner, with `awaiting_admin` as partner_customers has it."""
    return (
        Delegation.objects.filter(partner=partner, pk=pk, status__in=Delegation.LIVE)
        .select_related("customer", "partner")
        .annotate(
            awaiting_admin=~Exists(Membership.objects.filter(organization=OuterRef("customer")))
        )
        .first()
    )


def partner_activity(*, customer: Organization) -> QuerySet[AuditEvent]:
    """What partners did in the customer's name, newest first."""
    return (
        AuditEvent.objects.filter(acting_for=customer)
        .select_related("organization")
        .order_by("-created_at")
    )


def organization_members(*, actor: User, organization: Organization) -> QuerySet[Membership]:
    """Members of an organization the actor belongs to."""
    if membership_in(actor, organization) is None:
        return Membership.objects.none()
    return (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__email")
    )


def open_invitations(*, actor: User, organization: Organization) -> QuerySet[Invitation]:
    """Invitations of an organization the actor administers that were neither accepted nor
    withdrawn, with who sent them; `expired` tells those whose link has lapsed (the Members page
    offers to send them again)."""
    membership = membership_in(actor, organization)
    if membership is None or membership.role != Membership.Role.ADMIN:
        return Invitation.objects.none()
    return (
        Invitation.objects.filter(
            organization=organization, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .select_related("invited_by")
        .annotate(
            expired=ExpressionWrapper(
                Q(created_at__lte=timezone.now() - INVITATION_LIFETIME),
                output_field=BooleanField(),
            )
        )
        .order_by("-created_at")
    )


def administrators_emailed(organization: Organization) -> QuerySet[Membership]:
    """The administrators that an email to an organization's administrators reaches: those
    whose account is active. Staff deactivate a departed or compromised account to lock it
    out; it can no longer sign in to act on what it would read (a revoked key, a partner's
    grant, a copy of every key), and its mailbox may no longer be the person's."""
    return Membership.objects.filter(
        organization=organization, role=Membership.Role.ADMIN, user__is_active=True
    )


@dataclass(frozen=True)
class Addressee:
    """An email address that belongs to an account, as emails to it need it."""

    # The language its user reads emails in ("" when never chosen: the sender's).
    language: str
    # Its user's role in each organization it is a member of, by organization id.
    roles: dict[int, str]

    def is_member(self, organization: Organization | int) -> bool:
        pk = organization if isinstance(organization, int) else organization.pk
        return pk in self.roles


def addressees(
    addresses: Iterable[str], *, admins_of: Organization | None = None
) -> dict[str, Addressee]:
    """The accounts among `addresses`, and with `admins_of` that organization's administrators
    too (administrators_emailed): each lowercase address with its language and its memberships,
    from one query. An address without an account is left out: it is no member of anything."""
    wanted = {address.strip().lower() for address in addresses if address and address.strip()}
    accounts = Q(email__in=wanted)
    if admins_of is not None:
        accounts |= Q(pk__in=administrators_emailed(admins_of).values("user_id"))
    elif not wanted:
        return {}
    found: dict[str, Addressee] = {}
    # One row per membership (a LEFT JOIN: an account of no organization has one row of NULLs).
    for email, language, organization_id, role in User.objects.filter(accounts).values_list(
        "email", "language", "memberships__organization_id", "memberships__role"
    ):
        addressee = found.setdefault(email.lower(), Addressee(language=language, roles={}))
        if organization_id is not None:
            addressee.roles[organization_id] = role
    return found


def email_address_taken(email: str, *, by_other_than: User) -> bool:
    """Whether `email` is another account's: its login (User.email, which seeded, staff-made
    and invited users have without an allauth EmailAddress row) or an address it added."""
    from allauth.account.models import EmailAddress

    email = email.strip()
    return (
        User.objects.filter(email__iexact=email).exclude(pk=by_other_than.pk).exists()
        or EmailAddress.objects.filter(email__iexact=email).exclude(user=by_other_than).exists()
    )


# An organization's people and what they downloaded do not depend on its kind; any other row
# that names it (a license, a delegation on either side, a contract, a voucher batch) was made
# for a customer or for a partner, and would contradict a changed kind.
_KIND_FREE_RELATIONS = frozenset({"memberships", "invitations", "download_events"})


def organization_kind_ties(organization: Organization) -> list[str]:
    """What `organization` holds that was made for its kind (plural model names), so that its
    kind can no longer change; empty while it holds nothing but people. Looked up through the
    reverse relations, so that the portal core imports no domain app."""
    ties: list[str] = []
    for relation in Organization._meta.related_objects:
        if relation.get_accessor_name() in _KIND_FREE_RELATIONS:
            continue
        model = relation.related_model
        assert not isinstance(model, str)  # resolved once the apps are loaded
        rows = model._default_manager.filter(**{relation.field.name: organization})
        name = str(model._meta.verbose_name_plural)
        if name not in ties and rows.exists():
            ties.append(name)
    return ties
