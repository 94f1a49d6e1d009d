"""Who may do what: the one module every view and selector asks.

An actor reaches an organization's data in one of two ways: as a member of it (role admin or
member), or as a user of a partner organization the customer delegated to, within the scopes it
granted. Every decision goes through `organization_access` and `OrganizationAccess.allows`, so
a page cannot forget a rule: a new action is added here, with the role and scope that allow it.

Nothing is cached between requests: an access is computed from the database for each request,
so a revoked membership or delegation takes effect on the actor's next request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext as _

from .models import Membership, Organization, User


class Action(StrEnum):
    """Things an actor does with an organization's data."""

    VIEW_LICENSES = "view_licenses"  # My licenses, a license's page, files, certificates, export
    OBTAIN_KEYS = "obtain_keys"  # Get a key, version upgrade, Voucher center, EF drawdown
    MANAGE_LICENSES = "manage_licenses"  # renew, rehost, email a key again
    MANAGE_DATA = "manage_data"  # support registrations, custom values on one license
    BULK_CUSTOM_DATA = "bulk_custom_data"  # custom values on many licenses, CSV upload
    DEFINE_CUSTOM_FIELDS = "define_custom_fields"
    SHARE_LICENSES = "share_licenses"
    DOWNLOAD_SOFTWARE = "download_software"  # FileConnect
    VIEW_DOWNLOAD_LOG = "view_download_log"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_PARTNERS = "manage_partners"  # delegations to channel partners


class Scope(StrEnum):
    """What a customer delegates to a channel partner (Delegation.scopes holds these values)."""

    VIEW_LICENSES = "view_licenses"
    OBTAIN_KEYS = "obtain_keys"
    MANAGE_DATA = "manage_data"
    DOWNLOAD_SOFTWARE = "download_software"


@dataclass(frozen=True)
class Rule:
    admin_only: bool  # for the organization's own members: administrators only
    scope: Scope | None  # for a delegated partner: the scope that allows it (None: never)


RULES: dict[Action, Rule] = {
    Action.VIEW_LICENSES: Rule(admin_only=False, scope=Scope.VIEW_LICENSES),
    Action.OBTAIN_KEYS: Rule(admin_only=False, scope=Scope.OBTAIN_KEYS),
    Action.MANAGE_LICENSES: Rule(admin_only=False, scope=Scope.OBTAIN_KEYS),
    Action.MANAGE_DATA: Rule(admin_only=False, scope=Scope.MANAGE_DATA),
    Action.BULK_CUSTOM_DATA: Rule(admin_only=True, scope=Scope.MANAGE_DATA),
    Action.DEFINE_CUSTOM_FIELDS: Rule(admin_only=True, scope=None),
    Action.SHARE_LICENSES: Rule(admin_only=True, scope=None),
    Action.DOWNLOAD_SOFTWARE: Rule(admin_only=False, scope=Scope.DOWNLOAD_SOFTWARE),
    Action.VIEW_DOWNLOAD_LOG: Rule(admin_only=True, scope=None),
    Action.MANAGE_MEMBERS: Rule(admin_only=True, scope=None),
    Action.MANAGE_PARTNERS: Rule(admin_only=True, scope=None),
}


def _refusal(*, delegated: bool) -> str:
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
        return rule.scope is not None and rule.scope in self.scopes


def organization_access(
    *, actor: User, organization: Organization | None
) -> OrganizationAccess | None:
    """The actor's access to an organization, or None when it has none."""
    if organization is None or not actor.is_authenticated:
        return None
    membership = Membership.objects.filter(user=actor, organization=organization).first()
    if membership is not None:
        return OrganizationAccess(organization=organization, role=membership.role)
    return None


def allows(request: HttpRequest, action: Action) -> bool:
    """Whether the request's actor may do `action` in the organization the request acts in."""
    access: OrganizationAccess | None = getattr(request, "access", None)
    return access is not None and access.allows(action)


def require(request: HttpRequest, action: Action) -> None:
    """Refuses with a translated 403 when the request's actor may not do `action`."""
    if not allows(request, action):
        access: OrganizationAccess | None = getattr(request, "access", None)
        raise PermissionDenied(_refusal(delegated=access is not None and access.is_delegated))


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

_EF_CONTRACT_ACTIONS = frozenset(
    {
        "view_contract",  # details, dates, the product summary, sites and users
        "draw_down",
        "view_own_drawdowns",  # their own drawdowns and the licenses they drew down
        "declare_deployment",  # deployed quantities in a year's deployment report (a draft)
    }
)
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
    drawdowns, as a contract user does; it never configures, reports or manages users.
    """
    if access.is_delegated and access.allows(Action.OBTAIN_KEYS):
        return EF_CONTRACT_USER
    return None
