"""Who may do what: the one module every view and selector asks.

An actor reaches an organization's data in one of two ways: as a member of it (role admin or
member), or as a user of a partner organization the customer delegated to, within the scopes it
granted. Every decision goes through `organization_access` and `OrganizationAccess.allows`, so
a page cannot forget a rule: a new action is added here, with the role and scope that allow it.

Nothing is cached between requests: an access is computed from the database for each request,
so a revoked membership or delegation takes effect on the actor's next request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import Delegation, Membership, Organization, User


class Action(StrEnum):
    """Things an actor does with an organization's data."""

    VIEW_LICENSES = "view_licenses"  # My licenses, a license's page, files, certificates, export
    # A license the actor obtained itself: its result page, file and certificate. A partner
    # with the obtain-keys scope but not view-licenses sees the keys it obtained, nothing more.
    VIEW_OWN_RESULTS = "view_own_results"
    OBTAIN_KEYS = "obtain_keys"  # Get a key, version upgrade, Voucher center, EF drawdown
    MANAGE_LICENSES = "manage_licenses"  # renew, rehost, email a key again
    MANAGE_DATA = "manage_data"  # support registrations, custom values on one license
    BULK_CUSTOM_DATA = "bulk_custom_data"  # custom values on many licenses, CSV upload
    VIEW_CUSTOM_FIELDS = "view_custom_fields"
    DEFINE_CUSTOM_FIELDS = "define_custom_fields"
    SHARE_LICENSES = "share_licenses"
    DOWNLOAD_SOFTWARE = "download_software"  # FileConnect
    # Enterprise Flexible pages: the user's level on each contract decides the rest (below).
    ENTERPRISE_FLEX = "enterprise_flex"
    VIEW_DOWNLOAD_LOG = "view_download_log"
    VIEW_MEMBERS = "view_members"
    MANAGE_MEMBERS = "manage_members"
    VIEW_PARTNERS = "view_partners"  # the customer's Partners page: delegations and their trail
    MANAGE_PARTNERS = "manage_partners"  # grant, change and revoke delegations
    OPEN_DASHBOARD = "open_dashboard"


class Scope(StrEnum):
    """What a customer delegates to a channel partner (Delegation.scopes holds these values)."""

    VIEW_LICENSES = "view_licenses"
    OBTAIN_KEYS = "obtain_keys"
    MANAGE_DATA = "manage_data"
    DOWNLOAD_SOFTWARE = "download_software"


SCOPE_LABELS = {
    Scope.VIEW_LICENSES: gettext_lazy("View licenses"),
    Scope.OBTAIN_KEYS: gettext_lazy(
        "Obtain keys (Get a key, version upgrades, Voucher center, Enterprise Flexible drawdown)"
    ),
    Scope.MANAGE_DATA: gettext_lazy("Manage support registrations and custom data"),
    Scope.DOWNLOAD_SOFTWARE: gettext_lazy("Download software (FileConnect)"),
}
SCOPE_SHORT_LABELS = {
    Scope.VIEW_LICENSES: gettext_lazy("View licenses"),
    Scope.OBTAIN_KEYS: gettext_lazy("Obtain keys"),
    Scope.MANAGE_DATA: gettext_lazy("Manage data"),
    Scope.DOWNLOAD_SOFTWARE: gettext_lazy("Download software"),
}


ANY_SCOPE = "*"


@dataclass(frozen=True)
class Rule:
    admin_only: bool  # for the organization's own members: administrators only
    # For a delegated partner: the scope that allows it; ANY_SCOPE: any delegation; None: never.
    scope: str | None


RULES: dict[Action, Rule] = {
    Action.VIEW_LICENSES: Rule(admin_only=False, scope=Scope.VIEW_LICENSES),
    Action.VIEW_OWN_RESULTS: Rule(admin_only=False, scope=Scope.OBTAIN_KEYS),
    Action.OBTAIN_KEYS: Rule(admin_only=False, scope=Scope.OBTAIN_KEYS),
    Action.MANAGE_LICENSES: Rule(admin_only=False, scope=Scope.OBTAIN_KEYS),
    Action.MANAGE_DATA: Rule(admin_only=False, scope=Scope.MANAGE_DATA),
    Action.BULK_CUSTOM_DATA: Rule(admin_only=True, scope=Scope.MANAGE_DATA),
    Action.VIEW_CUSTOM_FIELDS: Rule(admin_only=False, scope=Scope.MANAGE_DATA),
    Action.DEFINE_CUSTOM_FIELDS: Rule(admin_only=True, scope=None),
    Action.SHARE_LICENSES: Rule(admin_only=True, scope=None),
    Action.DOWNLOAD_SOFTWARE: Rule(admin_only=False, scope=Scope.DOWNLOAD_SOFTWARE),
    Action.ENTERPRISE_FLEX: Rule(admin_only=False, scope=Scope.OBTAIN_KEYS),
    Action.VIEW_DOWNLOAD_LOG: Rule(admin_only=True, scope=None),
    Action.VIEW_MEMBERS: Rule(admin_only=False, scope=None),
    Action.MANAGE_MEMBERS: Rule(admin_only=True, scope=None),
    Action.VIEW_PARTNERS: Rule(admin_only=False, scope=None),
    Action.MANAGE_PARTNERS: Rule(admin_only=True, scope=None),
    Action.OPEN_DASHBOARD: Rule(admin_only=False, scope=ANY_SCOPE),
}

# What a partner's own users may do about the partner's customers (the Customers pages).
PARTNER_ADMIN_ONLY = {"decline_delegation"}


def refusal(*, delegated: bool, actions: Iterable[Action] | None = None) -> str:
    """Why the actor may not do this: for a partner, whether a scope would allow it. `actions`
    are what would have allowed it (None: not said, a scope is assumed to); a partner refused
    something no scope grants (the customer's members, partners, download log, custom fields,
    shares; a page that names no action) is not sent to ask for a scope that does not exist."""
    if delegated and actions is not None and not any(RULES[a].scope for a in actions):
        return _(
            "This is for the customer's own administrators: partner access never includes it, "
            "whatever it allows."
        )
    if delegated:
        return _(
            "Your partner access to this customer does not include this. Ask the customer's "
            "administrator to grant it on their Partners page."
        )
    return _("Only your organization's administrators can do this.")


@dataclass(frozen=True)
class OrganizationAccess:
    """How one actor reaches one organization: as a member (role) or as a partner (scopes)."""

    organization: Organization
    role: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    partner: Organization | None = None  # set when the access comes from a delegation

    @property
    def is_member(self) -> bool:
        return self.role is not None

    @property
    def is_admin(self) -> bool:
        return self.role == Membership.Role.ADMIN

    @property
    def is_delegated(self) -> bool:
        return self.partner is not None

    def allows(self, action: Action) -> bool:
        rule = RULES[action]
        if self.role is not None:
            return self.is_admin or not rule.admin_only
        if rule.scope == ANY_SCOPE:
            return bool(self.scopes)
        return rule.scope is not None and rule.scope in self.scopes


# What a license shared with a person lets that person do.
SHARE_ACTIONS: dict[str, frozenset[Action]] = {
    "read": frozenset({Action.VIEW_LICENSES}),
    "manage": frozenset({Action.VIEW_LICENSES, Action.MANAGE_LICENSES, Action.MANAGE_DATA}),
}


@dataclass(frozen=True)
class LicenseAccess:
    """What the actor may do with one license: through its owner organization, or a share."""

    owner: OrganizationAccess | None  # the request's access, when it acts in the owner
    share: str | None = None  # the share's level ("read" / "manage") otherwise

    def allows(self, action: Action) -> bool:
        if self.owner is not None:
            return self.owner.allows(action)
        return self.share is not None and action in SHARE_ACTIONS.get(self.share, frozenset())

    @property
    def is_owner(self) -> bool:
        """Seen in the owner organization's context (a member, or its partner)."""
        return self.owner is not None

    @property
    def can_manage(self) -> bool:
        return self.allows(Action.MANAGE_LICENSES)

    @property
    def can_manage_data(self) -> bool:
        return self.allows(Action.MANAGE_DATA)

    @property
    def can_share(self) -> bool:
        return self.allows(Action.SHARE_LICENSES)


def effective_delegations(*, today: date | None = None) -> QuerySet[Delegation]:
    """Delegations in effect today (live, started, not past their end date)."""
    today = today or timezone.localdate()
    return Delegation.objects.filter(status__in=Delegation.LIVE, starts_on__lte=today).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=today)
    )


def delegated_access(delegation: Delegation) -> OrganizationAccess:
    """A partner's access to the customer of an effective delegation."""
    return OrganizationAccess(
        organization=delegation.customer,
        scopes=frozenset(delegation.scopes),
        partner=delegation.partner,
    )


# Within one request, portal.http.organization_required remembers the access it computed on the
# request's user object, so selectors asking again get the same answer without a query. The user
# object lives for one request only: nothing is cached across requests.
_REMEMBERED = "_portal_accesses"
# The user's memberships, loaded with the user by portal.middleware.PortalAuthenticationMiddleware
# (one query) or by portal.selectors.user_memberships; the same one-request lifetime.
MEMBERSHIPS_ATTR = "_portal_memberships"


def remember_access(actor: User, access: OrganizationAccess) -> None:
    remembered = actor.__dict__.setdefault(_REMEMBERED, {})
    remembered[access.organization.pk] = access


def organization_access(
    *, actor: User, organization: Organization | None
) -> OrganizationAccess | None:
    """The actor's access to an organization (membership, or a partner's delegation), or None."""
    if organization is None or not actor.is_authenticated:
        return None
    remembered = actor.__dict__.get(_REMEMBERED, {})
    if organization.pk in remembered:
        return remembered[organization.pk]
    memberships: list[Membership] | None = getattr(actor, MEMBERSHIPS_ATTR, None)
    membership = (
        next((m for m in memberships if m.organization_id == organization.pk), None)
        if memberships is not None
        else Membership.objects.filter(user=actor, organization=organization).first()
    )
    if membership is not None:
        return OrganizationAccess(organization=organization, role=membership.role)
    delegation = (
        effective_delegations()
        .filter(customer=organization, partner__memberships__user=actor)
        .select_related("customer", "partner")
        .order_by("created_at")
        .first()
    )
    return delegated_access(delegation) if delegation is not None else None


def may_go_on(
    *, actor: User | None, organization: Organization, delegation_id: int | None, action: Action
) -> bool:
    """Whether work the actor started earlier that goes on without it (a voucher conversion's
    next chunk, in a worker) may still do `action` in `organization`.

    Decided from the database now, as organization_access decides it for a request, with one
    difference: work started under a partner's delegation goes on under that delegation only.
    Its row (and the partner user's membership) is locked FOR SHARE until the caller's
    transaction ends, so a customer revoking it or changing its scopes waits for the step in
    progress, and every later step sees the change. FOR SHARE, which the ORM does not offer,
    rather than select_for_update's FOR UPDATE: two conversions under one delegation must not
    queue behind each other.
    """
    if actor is None:
        return False
    if delegation_id is None:
        role = (
            Membership.objects.filter(user=actor, organization=organization)
            .values_list("role", flat=True)
            .first()
        )
        return role is not None and OrganizationAccess(organization, role=role).allows(action)
    sql, params = (
        effective_delegations()
        .filter(pk=delegation_id, customer=organization, partner__memberships__user=actor)
        .values_list("scopes", "partner_id")
        .query.sql_with_params()
    )
    if connection.vendor == "postgresql":
        sql += " FOR SHARE"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    scopes = json.loads(row[0]) if isinstance(row[0], str) else row[0]  # raw jsonb: text
    access = OrganizationAccess(
        organization, scopes=frozenset(scopes), partner=Organization(pk=row[1])
    )
    return access.allows(action)


def partner_allows(membership: Membership, action: str) -> bool:
    """What a partner organization's own user may do on its Customers pages."""
    if membership.organization.kind != Organization.Kind.PARTNER:
        return False
    return membership.is_admin or action not in PARTNER_ADMIN_ONLY


def allows(request: HttpRequest, action: Action) -> bool:
    """Whether the request's actor may do `action` in the organization the request acts in."""
    access: OrganizationAccess | None = getattr(request, "access", None)
    return access is not None and access.allows(action)


def require(request: HttpRequest, action: Action) -> None:
    """Refuses with a translated 403 when the request's actor may not do `action`."""
    if not allows(request, action):
        access: OrganizationAccess | None = getattr(request, "access", None)
        raise PermissionDenied(
            refusal(delegated=access is not None and access.is_delegated, actions=[action])
        )


# ---------------------------------------------------------------------------------------------
# Enterprise Flexible: what each per-contract level may do
#
# A user's level on one EF contract (enterprise_flex's EFContractUser.level) decides what they
# may do with that contract; a user may hold different levels on different contracts. Plain
# strings, so that this module never imports enterprise_flex. Each level includes the one
# before it.

EF_CONTRACT_USER = "contract"
EF_CONFIGURATION_USER = "configuration"
EF_SUPER_USER = "super"
# Not a level a contract's user holds: what a channel partner acting for the customer may do.
EF_DELEGATED = "delegated"

_EF_DELEGATED_ACTIONS = frozenset(
    {
        "view_contract",  # details, dates, the product summary, sites and users
        "draw_down",
        "view_own_drawdowns",  # their own drawdowns and the licenses they drew down
    }
)
_EF_CONTRACT_ACTIONS = _EF_DELEGATED_ACTIONS | {
    "declare_deployment",  # deployed quantities in a year's deployment report (a draft)
}
_EF_CONFIGURATION_ACTIONS = _EF_CONTRACT_ACTIONS | {
    "view_all_drawdowns",  # every drawdown and license of the contract
    "manage_sites",
    "view_true_up",  # the true-up page, quantities only
}
_EF_SUPER_ACTIONS = _EF_CONFIGURATION_ACTIONS | {
    "view_values",  # unit values and overage values, on every page
    "run_reports",  # the true-up's CSV and PDF exports
    "submit_report",  # a submitted deployment report is final
    "manage_users",  # add, re-level, remove and invite the contract's users
}

EF_LEVEL_ACTIONS: dict[str, frozenset[str]] = {
    EF_DELEGATED: _EF_DELEGATED_ACTIONS,
    EF_CONTRACT_USER: _EF_CONTRACT_ACTIONS,
    EF_CONFIGURATION_USER: _EF_CONFIGURATION_ACTIONS,
    EF_SUPER_USER: _EF_SUPER_ACTIONS,
}


def ef_level_allows(level: str | None, action: str) -> bool:
    """Whether a user holding `level` on an EF contract may do `action` on it."""
    return level is not None and action in EF_LEVEL_ACTIONS.get(level, frozenset())


def ef_delegated_level(access: OrganizationAccess) -> str | None:
    """The level a delegated partner user holds on every EF contract of the customer.

    With the obtain-keys scope a partner draws down for the customer and sees its own
    drawdowns; it never configures, reports deployments or manages users. A contract user's
    level would let it read and save the customer's deployment report (every user's drawn-down
    figures per product and site): the obtain-keys scope is for drawdowns only.
    """
    if access.is_delegated and access.allows(Action.OBTAIN_KEYS):
        return EF_DELEGATED
    return None
