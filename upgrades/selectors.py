from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from licensing.codes import CodeFormatError, canonical_short_code
from licensing.models import License, ProductVersion
from portal.models import Organization, User
from portal.policy import Action, OrganizationAccess, organization_access

from .models import UpgradeLine, UpgradeNotification, UpgradeRedemption

# A line with something left to upgrade now (UpgradeLine.upgradable_quantity above zero).
UPGRADABLE = Q(
    remaining_quantity__gt=0,
    source_license__status=License.Status.ACTIVE,
    source_license__quantity__gt=0,
) & ~Q(source_license__source=License.Source.EF_DRAWDOWN)


def _is_open(notification: UpgradeNotification) -> bool:
    """Whether a notification can still be used: not expired today, and a line with something
    left to upgrade."""
    if notification.is_expired(today=timezone.localdate()):
        return False
    return notification.lines.filter(UPGRADABLE).exists()


def open_notification(*, code: str, organization: Organization) -> UpgradeNotification | None:
    """The organization's notification with this ID if it can still be used, else None.

    Unknown, expired, fully used and other organizations' IDs all read the same.
    """
    try:
        canonical = canonical_short_code(code)
    except CodeFormatError:
        return None
    notification = (
        UpgradeNotification.objects.select_related("target_version__product")
        .filter(code=canonical, organization=organization)
        .first()
    )
    return notification if notification is not None and _is_open(notification) else None


@dataclass(frozen=True)
class NotificationLookup:
    """What a notification ID given in an organization leads to: its open notification there,
    its notification there that is no longer open (`closed`: expired or used up), the actor's
    access to the other organization it belongs to, or none of these (a failed code)."""

    notification: UpgradeNotification | None = None
    elsewhere: OrganizationAccess | None = None
    closed: UpgradeNotification | None = None

    @property
    def failed(self) -> bool:
        return self.notification is None and self.elsewhere is None and self.closed is None


def notification_lookup(
    *, code: str, actor: User, organization: Organization
) -> NotificationLookup:
    """The open notification of `organization` with this ID, or its own one no longer open
    (expired or used up: a genuine ID, the wizard says why it is closed); else the actor's
    access to the other organization whose open notification it is, when the actor may obtain
    keys for it (another of its memberships, or a customer that delegated that to its partner);
    else a failed code.

    Such an ID elsewhere is genuine, not a guess: the wizard says where it belongs. To anyone
    else another organization's ID stays unknown, so its existence is not revealed; and one
    that is expired or used up counts as a failed code even for those who may act for it.
    """
    try:
        canonical = canonical_short_code(code)
    except CodeFormatError:
        return NotificationLookup()
    # IDs are unique across organizations: this one row decides all three outcomes.
    notification = (
        UpgradeNotification.objects.select_related("organization", "target_version__product")
        .filter(code=canonical)
        .first()
    )
    if notification is None:
        return NotificationLookup()
    if notification.organization_id == organization.pk:
        if _is_open(notification):
            return NotificationLookup(notification=notification)
        return NotificationLookup(closed=notification)
    access = organization_access(actor=actor, organization=notification.organization)
    if access is None or not access.allows(Action.OBTAIN_KEYS) or not _is_open(notification):
        return NotificationLookup()
    return NotificationLookup(elsewhere=access)


def open_lines(notification: UpgradeNotification) -> QuerySet[UpgradeLine]:
    """A notification's lines that still have something to upgrade."""
    return (
        notification.lines.filter(UPGRADABLE)
        .select_related("source_license__version__product", "source_license__registration")
        .order_by("source_license__version__product__name", "source_license__key")
    )


def open_notifications(*, organization: Organization) -> QuerySet[UpgradeNotification]:
    """The organization's usable notifications with their open lines."""
    return (
        UpgradeNotification.objects.filter(
            Exists(UpgradeLine.objects.filter(UPGRADABLE, notification=OuterRef("pk"))),
            organization=organization,
            expires_on__gte=timezone.localdate(),
        )
        .select_related("target_version__product")
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=UpgradeLine.objects.filter(UPGRADABLE).select_related(
                    "source_license__version__product"
                ),
                to_attr="open_lines",
            )
        )
        .order_by("-created_at")
    )


def notification_for(*, organization: Organization, pk: int) -> UpgradeNotification | None:
    """One of the organization's notifications, expired or not."""
    return (
        UpgradeNotification.objects.select_related("target_version__product")
        .filter(organization=organization, pk=pk)
        .first()
    )


def notification_history(
    notification: UpgradeNotification, *, only_by: User | None = None
) -> QuerySet[UpgradeRedemption]:
    """The upgrades made from a notification: which licenses, who, when. `only_by`: those one
    person made (a partner that may obtain keys for the customer but not view its licenses sees
    its own, not the customer's members and the licenses they upgraded)."""
    history = UpgradeRedemption.objects.filter(line__notification=notification)
    if only_by is not None:
        history = history.filter(user=only_by)
    return history.select_related("license", "line__source_license__version", "user").order_by(
        "-created_at"
    )


@dataclass(frozen=True)
class PublicationPreview:
    """What publishing a version would do: who would be notified (nothing yet is written)."""

    version: ProductVersion
    organizations: int
    licenses: int

    @property
    def already_published(self) -> bool:
        return self.version.published_at is not None


def publication_preview(*, version: ProductVersion) -> PublicationPreview:
    """The organizations and licenses that publishing `version` now would notify.

    The same eligibility rule as notifications_create (upgrades/services.py): an active license
    of an earlier version of the product whose maintenance covers the release date
    (License.covers), not drawn down from an Enterprise Flexible contract.
    """
    counts = (
        License.objects.filter(
            License.covering(version.released_on),
            version__product_id=version.product_id,
            version__released_on__lt=version.released_on,
            status=License.Status.ACTIVE,
            quantity__gt=0,
        )
        .exclude(source=License.Source.EF_DRAWDOWN)
        .aggregate(licenses=Count("pk"), organizations=Count("owner", distinct=True))
    )
    return PublicationPreview(
        version=version, organizations=counts["organizations"], licenses=counts["licenses"]
    )


def upgrade_open_for(license: License, today: date) -> bool:
    """Whether a notification offers the license an upgrade now: a line with seats left, not
    expired (licensing's license page says so, or says why not)."""
    return UpgradeLine.objects.filter(
        source_license=license, remaining_quantity__gt=0, notification__expires_on__gte=today
    ).exists()
