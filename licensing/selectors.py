from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.http import Http404

from portal.models import AuditEvent, Organization, User
from portal.policy import Action, LicenseAccess, OrganizationAccess, organization_access

from .models import CustomField, License, LicenseShare, SupportRegistration


def active_shares(actor: User) -> QuerySet[LicenseShare]:
    """The shares that let `actor` see a license now: theirs, not revoked."""
    return LicenseShare.objects.filter(user=actor, revoked_at__isnull=True)


def _active_shares(actor: User) -> QuerySet[LicenseShare]:
    return active_shares(actor).filter(license=OuterRef("pk"))


def _owned(actor: User, organization: Organization | None, purpose: Action) -> Q | None:
    """The acting organization's licenses the actor may see, or None (portal.policy decides):
    all of them with the view-licenses scope (or `purpose`'s), or only those the actor obtained
    with the obtain-keys scope: issued, or renewed with a serial in Get a key (a renewal keeps
    the license and its key, and emails them to the actor)."""
    access = organization_access(actor=actor, organization=organization)
    if access is None:
        return None
    if access.allows(Action.VIEW_LICENSES) or access.allows(purpose):
        return Q(owner=organization)
    if access.allows(Action.VIEW_OWN_RESULTS):
        # Read first, as the shares are: few, and a plain id list keeps the query an index scan.
        renewed = list(
            AuditEvent.objects.filter(
                actor=actor,
                acting_for=organization,
                action="license.renewed",
                object_type="licensing.license",
            ).values_list("object_id", flat=True)
        )
        return Q(owner=organization) & (Q(issued_by=actor) | Q(pk__in=renewed))
    return None


def licenses_visible_to(
    *,
    actor: User,
    organization: Organization | None,
    purpose: Action = Action.VIEW_LICENSES,
) -> QuerySet[License]:
    """Licenses the actor may see: the acting organization's, and those shared with it.

    A partner acting for a customer sees the customer's licenses with the view-licenses scope
    (or the scope of `purpose`: FileConnect lists them to a partner allowed to download), or
    only those it obtained itself with the obtain-keys scope (portal.policy decides).
    Rows carry `shared_access` (the share's level, or None) for `access_of`.
    """
    if not actor.is_authenticated:
        return License.objects.none()
    # Shares per person are few: fetching their ids first keeps the main query an index scan
    # on owner (OR a short id list) instead of an EXISTS evaluated on every license row.
    shared_ids = list(active_shares(actor).values_list("license_id", flat=True))
    # An empty id list drops out of the OR when the query is compiled.
    visible = Q(pk__in=shared_ids)
    owned = _owned(actor, organization, purpose)
    if owned is not None:
        visible |= owned
    queryset = License.objects.filter(visible)
    if shared_ids:
        queryset = queryset.annotate(
            shared_access=Subquery(_active_shares(actor).values("access")[:1])
        )
    return queryset.select_related("version__product", "owner", "registration")


def keys_readable(
    *, actor: User | None, organization: Organization, keys: Collection[str]
) -> set[str]:
    """Which of the organization's license keys the actor may read whole (at most one query).

    All of them for an actor who may view the organization's licenses (a member, a partner
    granted view-licenses) and for work no one's access limits (a command, staff); for a
    partner that may only obtain keys, those of the licenses licensing lets it see: the ones it
    obtained or renewed, not the customer's.
    """
    wanted = set(keys)
    if not wanted or actor is None:
        return wanted
    access = organization_access(actor=actor, organization=organization)
    if access is not None and access.allows(Action.VIEW_LICENSES):
        return wanted
    return set(
        licenses_visible_to(actor=actor, organization=organization)
        .filter(owner=organization, key__in=wanted)
        .values_list("key", flat=True)
    )


def key_shown(*, actor: User | None, organization: Organization, key: str) -> str:
    """One of the organization's keys as the actor may read it: whole (keys_readable), or its
    last group only."""
    from .templatetags.licensing_tags import mask_key

    return (
        key
        if key in keys_readable(actor=actor, organization=organization, keys=[key])
        else mask_key(key)
    )


def access_of(license: License, *, access: OrganizationAccess | None) -> LicenseAccess:
    """The actor's access to a license loaded through licenses_visible_to, given the request's
    access to the organization it acts in."""
    if access is not None and license.owner_id == access.organization.pk:
        return LicenseAccess(owner=access)
    return LicenseAccess(owner=None, share=getattr(license, "shared_access", None) or "read")


def license_for(*, actor: User, organization: Organization | None, pk: UUID | str) -> License:
    """One visible license, or 404 (never a hint that it exists elsewhere)."""
    try:
        return licenses_visible_to(actor=actor, organization=organization).get(pk=pk)
    except (License.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise Http404("No such license.") from exc


def license_owner_reachable(*, actor: User, pk: UUID | str) -> OrganizationAccess | None:
    """The actor's access to the organization owning license `pk`, when the actor could see the
    license by switching to that organization or acting for it as its partner; None otherwise
    (no such license, or one the actor may not see: nothing tells it exists)."""
    try:
        owner_id = License.objects.filter(pk=pk).values_list("owner_id", flat=True).first()
    except (ValidationError, ValueError, TypeError):
        return None
    if owner_id is None or not actor.is_authenticated:
        return None
    owner = Organization.objects.get(pk=owner_id)
    access = organization_access(actor=actor, organization=owner)
    if access is None:
        return None
    visible = licenses_visible_to(actor=actor, organization=owner).filter(pk=pk).exists()
    return access if visible else None


def latest_registration(*, organization: Organization) -> SupportRegistration | None:
    """The organization's most recent support registration, to prefill the next one."""
    # Not one saved with an Enterprise Flexible drawdown: that is a snapshot of the contract
    # site's contact (one person, often no phones), written by every drawdown, so it would
    # replace what the organization last typed and leave the phone fields empty.
    drawn_down = License.objects.filter(
        registration=OuterRef("pk"), source=License.Source.EF_DRAWDOWN
    )
    return (
        SupportRegistration.objects.filter(organization=organization)
        .exclude(Exists(drawn_down))
        .order_by("-created_at")
        .first()
    )


def custom_fields_of(organization: Organization | None) -> list[CustomField]:
    """The organization's custom fields in display order."""
    if organization is None:
        return []
    return list(CustomField.objects.filter(organization=organization))


def custom_fields_visible(*, access: OrganizationAccess | None) -> list[CustomField]:
    """The acting organization's custom fields the actor may read, in display order: all of
    them, or none for a partner whose delegation lacks the manage-data scope (the fields and
    their values are the customer's own data, not part of its licenses)."""
    if access is None or not access.allows(Action.VIEW_CUSTOM_FIELDS):
        return []
    return custom_fields_of(access.organization)


# What happened to a license itself: the history a share recipient sees (README, "What a share
# recipient sees"), without actors. Shares, custom data and resends name people or hold the
# owner's own data, so they stay the owner's.
RECIPIENT_HISTORY_ACTIONS = (
    "license.issued",
    "license.renewed",
    "license.rehosted",
    "license.superseded",
    "license.revoked",
    "license.upgraded",
    "license.registration_changed",
)


def license_history(
    license: License, *, access: LicenseAccess | None = None
) -> QuerySet[AuditEvent]:
    """Audit events about a license, newest first; a share recipient's `access` narrows them."""
    events = AuditEvent.objects.filter(object_type="licensing.license", object_id=str(license.pk))
    if access is not None and not access.is_owner:
        events = events.filter(action__in=RECIPIENT_HISTORY_ACTIONS)
    elif access is not None and not access.allows(Action.VIEW_CUSTOM_FIELDS):
        # A partner without the manage-data scope: the custom values changed are not its to read.
        events = events.exclude(action="license.custom_data_changed")
    return events.order_by("-created_at")


def last_renewal(license: License) -> AuditEvent | None:
    """The license's latest renewal (who renewed it, for whom), or None if it was never
    renewed: a renewal keeps the license and emails its file to whoever renewed it."""
    if license.file_issued_at == license.issued_at:  # never reissued: no query
        return None
    return (
        AuditEvent.objects.filter(
            object_type="licensing.license", object_id=str(license.pk), action="license.renewed"
        )
        .select_related("actor")
        .order_by("-created_at")
        .first()
    )


@dataclass(frozen=True)
class RelatedLicenses:
    supersedes: License | None
    superseded_by: License | None
    # Every visible license made from this one (an upgrade of all or part of it), oldest first:
    # which of them took some of its seats, the license's `license.upgraded` events say.
    successors: tuple[License, ...] = ()


def related_licenses(
    *,
    actor: User,
    organization: Organization | None,
    license: License,
    superseded_by: bool = True,
) -> RelatedLicenses:
    """The license this one supersedes and the newest one superseding it, each only if the
    actor may see it itself: a share of one license is not a share of its neighbours."""
    if not superseded_by and license.supersedes_id is None:
        return RelatedLicenses(supersedes=None, superseded_by=None)
    visible = licenses_visible_to(actor=actor, organization=organization).select_related(None)
    related = list(
        visible.filter(Q(pk=license.supersedes_id) | Q(supersedes=license))
        .select_related("version")
        .order_by("-issued_at")
    )
    return RelatedLicenses(
        supersedes=next((r for r in related if r.pk == license.supersedes_id), None),
        superseded_by=next((r for r in related if r.supersedes_id == license.pk), None),
        successors=tuple(r for r in reversed(related) if r.supersedes_id == license.pk),
    )


@dataclass(frozen=True)
class UpgradedSeats:
    """Seats of a license moved to newer versions by upgrades: how many in all, and the visible
    licenses that took them with the seats each took."""

    count: int
    to: list[tuple[License, int]]


def license_upgraded_seats(license: License, *, successors: Sequence[License]) -> UpgradedSeats:
    """Where a license's upgraded seats went (its page and certificate say so, not "Quantity
    0"), among `successors` (related_licenses: those the actor may see)."""
    # All of its upgrade events, not the page's latest 100: a license emailed or edited often
    # after its upgrades would otherwise lose them. Version upgrades and upgrade serials for
    # part of it both name the newer license and the seats it took: the events' count, which
    # the newer license's own quantity is not once that is upgraded in turn.
    seats_to: dict[str, int] = {}
    for details in (
        license_history(license).filter(action="license.upgraded").values_list("details", flat=True)
    ):
        target = str(details.get("new_license"))
        seats_to[target] = seats_to.get(target, 0) + int(details.get("quantity") or 0)
    return UpgradedSeats(
        count=sum(seats_to.values()),
        to=[(r, seats_to[str(r.pk)]) for r in successors if str(r.pk) in seats_to],
    )


def owned_license_for(*, actor: User, organization: Organization | None, pk: UUID | str) -> License:
    """One license the acting organization owns (not merely shared with the actor), or 404.

    The owner's part of licenses_visible_to, in one query: shares do not matter here, so they
    are not read.
    """
    owned = _owned(actor, organization, Action.VIEW_LICENSES)
    if owned is None:
        raise Http404("No such license.")
    try:
        return (
            License.objects.filter(owned)
            .select_related("version__product", "owner", "registration")
            .get(pk=pk)
        )
    except (License.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise Http404("No such license.") from exc


def license_shares(license: License) -> QuerySet[LicenseShare]:
    """Active shares of a license."""
    return license.shares.filter(revoked_at__isnull=True).select_related("user", "created_by")


# Whether a license holds an open free upgrade (the upgrades app: a notification line with seats
# left). Apps register from AppConfig.ready, so that licensing imports none of them.
UpgradeOfferHook = Callable[[License, date], bool]
_UPGRADE_OFFERS: dict[str, UpgradeOfferHook] = {}


def upgrade_offer_register(name: str, hook: UpgradeOfferHook) -> None:
    _UPGRADE_OFFERS[name] = hook


def upgrade_offered(license: License, *, today: date) -> bool:
    """Whether a free upgrade of the license is open now, where the customer takes it."""
    return any(hook(license, today) for hook in _UPGRADE_OFFERS.values())
