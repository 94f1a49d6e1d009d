"""FileConnect reads: what an actor may download, and why later versions are out of reach.

Entitlement comes from a basis, either a license the actor sees (its organization's, or one
shared with the actor) or a serial number the actor entered in this session:

- a license grants the files of its own version, and of every later version of the product
  released while its maintenance was current (maintenance start <= release date <= end);
  only active licenses grant anything (a superseded license hands over to its successors,
  which LicenseNotActive names);
- a serial number that is unredeemed, or redeemed by the acting organization, grants the files
  of its own version.

Withdrawn releases and withdrawn files grant nothing and are never listed, nor are releases
dated after today or releases of a version dated after today: staff stage a launch ahead, and
nothing of it shows (not even greyed out) before its date.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

from django.contrib.sessions.backends.base import SessionBase
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from licensing.models import License, ProductVersion, SerialNumber
from licensing.selectors import licenses_visible_to
from portal.models import Organization, User
from portal.policy import Action, organization_access

from .models import DownloadEvent, Release, ReleaseFile
from .verification import VerifyCommands

# The serial numbers a user entered, kept in the session for the organization it acted in.
SESSION_SERIALS_KEY = "fileconnect:serials"
SESSION_SERIALS_MAX = 20


@dataclass(frozen=True)
class Basis:
    """What entitles a download: one license or one serial number."""

    license: License | None = None
    serial: SerialNumber | None = None

    @property
    def version(self) -> ProductVersion:
        if self.license is not None:
            return self.license.version
        assert self.serial is not None
        return self.serial.version

    @property
    def ref(self) -> str:
        if self.license is not None:
            return f"license:{self.license.pk}"
        assert self.serial is not None
        return f"serial:{self.serial.pk}"


class Reason:
    """Why a later version is listed but greyed out."""

    MAINTENANCE_ENDED = "maintenance_ended"
    BEFORE_MAINTENANCE = "before_maintenance"
    DURING_LAPSE = "during_lapse"
    SERIAL_VERSION_ONLY = "serial_version_only"


@dataclass(frozen=True)
class Entitlement:
    entitled: bool
    reason: str = ""


def version_entitlement(
    basis: Basis, version: ProductVersion, *, today: date
) -> Entitlement | None:
    """Whether the basis grants a version's files; None when the version is not listed at all."""
    own = basis.version
    if version.product_id != own.product_id or version.released_on > today:
        return None
    if version.pk == own.pk:
        return Entitlement(entitled=True)
    if version.released_on <= own.released_on:
        return None  # earlier versions are not part of what a purchase entitles to
    if basis.license is None:
        return Entitlement(entitled=False, reason=Reason.SERIAL_VERSION_ONLY)
    license = basis.license
    if version.released_on > license.maintenance_end:
        return Entitlement(entitled=False, reason=Reason.MAINTENANCE_ENDED)
    if license.covers(version.released_on):
        return Entitlement(entitled=True)
    if license.earlier_maintenance_end is not None and (
        version.released_on > license.earlier_maintenance_end
    ):
        return Entitlement(entitled=False, reason=Reason.DURING_LAPSE)
    return Entitlement(entitled=False, reason=Reason.BEFORE_MAINTENANCE)


@dataclass(frozen=True)
class Offer:
    """A file offered for download: its personal link and the commands that verify it."""

    file: ReleaseFile
    download_url: str
    verify: VerifyCommands


@dataclass
class PlatformGroup:
    platform: str
    files: list[ReleaseFile] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)  # filled for entitled versions only


@dataclass
class VersionGroup:
    version: ProductVersion
    entitlement: Entitlement
    releases: list[Release] = field(default_factory=list)
    platforms: list[PlatformGroup] = field(default_factory=list)


def _live_releases(today: date, prefix: str = "") -> Q:
    """Releases that are listed and served today: not withdrawn, and neither they nor their
    version dated after today (`prefix` reaches them from another model, e.g. "release__")."""
    return Q(
        **{
            f"{prefix}withdrawn_at__isnull": True,
            f"{prefix}released_on__lte": today,
            f"{prefix}version__released_on__lte": today,
        }
    )


# ---------------------------------------------------------------------------------------------
# Ways in


def licenses_for_downloads(*, actor: User, organization: Organization | None) -> QuerySet[License]:
    """Active licenses the actor sees (its organization's and shared ones), by product."""
    return (
        licenses_visible_to(
            actor=actor, organization=organization, purpose=Action.DOWNLOAD_SOFTWARE
        )
        .filter(status=License.Status.ACTIVE)
        .order_by("version__product__name", "-version__released_on", "maintenance_end", "pk")
    )


# Upgrades split a license into a few new ones at most; a page lists no more than this.
SUCCESSORS_SHOWN = 20


class LicenseNotActive(Exception):
    """A license the actor sees that entitles to nothing: revoked, or superseded (`successors`
    are the licenses made from it that the actor sees, newest first)."""

    def __init__(self, license: License, successors: Sequence[License] = ()) -> None:
        super().__init__(license.status)
        self.license = license
        self.successors = successors


def license_basis(*, actor: User, organization: Organization | None, pk: UUID | str) -> Basis:
    """An active license the actor sees, as a basis; LicenseNotActive for a superseded or
    revoked one the actor sees (its page and emails link here); 404 otherwise."""
    visible = licenses_visible_to(
        actor=actor, organization=organization, purpose=Action.DOWNLOAD_SOFTWARE
    )
    license = visible.filter(pk=pk).first()
    if license is None:
        raise Http404("No such license.")
    if license.status == License.Status.REVOKED:
        raise LicenseNotActive(license)
    if license.status == License.Status.SUPERSEDED:
        # Only successors the actor sees itself: a share of one license is not a share of the
        # licenses that replaced it.
        # Those that entitle: a successor revoked since would lead to the same refusal.
        successors = visible.filter(supersedes=license, status=License.Status.ACTIVE).order_by(
            "-issued_at", "pk"
        )
        raise LicenseNotActive(license, list(successors[:SUCCESSORS_SHOWN]))
    return Basis(license=license)


def _serials_granting(organization: Organization, today: date) -> Q:
    unredeemed = Q(status=SerialNumber.Status.OPEN) & (
        Q(expires_on__isnull=True) | Q(expires_on__gte=today)
    )
    return unredeemed | Q(status=SerialNumber.Status.REDEEMED, redeemed_by=organization)


def unlocked_serial_ids(session: SessionBase) -> list[int]:
    """The ids of serial numbers entered in this session (never trusted alone: re-checked)."""
    raw = session.get(SESSION_SERIALS_KEY, [])
    return [value for value in raw if isinstance(value, int)] if isinstance(raw, list) else []


def serial_basis(
    *, organization: Organization, pk: int, unlocked: Iterable[int], today: date
) -> Basis:
    """A serial number entered in this session that still grants its version; 404 otherwise."""
    if pk not in set(unlocked):
        raise Http404("Enter the serial number first.")
    serial = (
        SerialNumber.objects.select_related("version__product")
        .filter(_serials_granting(organization, today), pk=pk)
        .first()
    )
    if serial is None:
        raise Http404("No such serial number.")
    return Basis(serial=serial)


# ---------------------------------------------------------------------------------------------
# The entitled list


def entitled_versions(basis: Basis, *, today: date) -> list[VersionGroup]:
    """The basis's version and later ones with their live releases and files, newest first.

    Two queries whatever the number of releases and files.
    """
    own = basis.version
    releases = (
        Release.objects.filter(_live_releases(today), version__product_id=own.product_id)
        .filter(Q(version=own) | Q(version__released_on__gt=own.released_on))
        .select_related("version__product")
        .prefetch_related(Prefetch("files", queryset=ReleaseFile.objects.filter(withdrawn_at=None)))
        .order_by("-version__released_on", "version_id", "-released_on", "-pk")
    )
    groups: dict[int, VersionGroup] = {}
    for release in releases:
        entitlement = version_entitlement(basis, release.version, today=today)
        if entitlement is None:
            continue
        group = groups.get(release.version_id)
        if group is None:
            group = groups[release.version_id] = VersionGroup(release.version, entitlement)
        group.releases.append(release)
    for group in groups.values():
        platforms: dict[str, PlatformGroup] = {}
        for release in group.releases:
            for release_file in release.files.all():
                platforms.setdefault(
                    release_file.platform, PlatformGroup(release_file.platform)
                ).files.append(release_file)
        group.platforms = sorted(platforms.values(), key=lambda p: p.platform.lower())
    return list(groups.values())


# ---------------------------------------------------------------------------------------------
# One file


def release_files_signed_by_other_keys(*, key_id: str) -> QuerySet[ReleaseFile]:
    """Release files (withdrawn releases' too) whose signature is not `key_id`'s, oldest first."""
    return ReleaseFile.objects.exclude(key_id=key_id).order_by("pk")


def release_file_for(*, pk: int) -> ReleaseFile:
    """A release file, or 404; it may be withdrawn or dated after today, which basis_for_file
    refuses (the download view says so to a user holding a link to it)."""
    found = ReleaseFile.objects.select_related("release__version__product").filter(pk=pk).first()
    if found is None:
        raise Http404("No such file.")
    return found


def basis_for_file(
    *,
    actor: User,
    organization: Organization | None,
    file: ReleaseFile,
    unlocked: Sequence[int],
    today: date,
    prefer: str = "",
) -> Basis | None:
    """A basis on which the actor may download the file now, the preferred one (a Basis.ref)
    if it still qualifies, or None: the file is out of the actor's reach (withdrawn, or dated
    after today, included)."""
    if file.is_withdrawn or not file.release.is_released(today=today):
        return None
    version = file.release.version
    licenses = licenses_for_downloads(actor=actor, organization=organization).filter(
        Q(version=version)
        | Q(
            License.covering(version.released_on),
            version__product_id=version.product_id,
            version__released_on__lt=version.released_on,
        )
    )
    serials = SerialNumber.objects.none()
    if unlocked and organization is not None:
        serials = SerialNumber.objects.select_related("version__product").filter(
            _serials_granting(organization, today), pk__in=list(unlocked), version=version
        )
    kind, _, ident = prefer.partition(":")
    if kind == "license" and _is_uuid(ident):
        license = licenses.filter(pk=ident).first()
        if license is not None:
            return Basis(license=license)
    # isascii: "²" is a digit to isdigit() but not to int().
    elif kind == "serial" and ident.isascii() and ident.isdigit() and len(ident) < 19:
        serial = serials.filter(pk=int(ident)).first()
        if serial is not None:
            return Basis(serial=serial)
    license = licenses.first()
    if license is not None:
        return Basis(license=license)
    serial = serials.order_by("pk").first()
    return Basis(serial=serial) if serial is not None else None


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The download log


def download_log(*, actor: User, organization: Organization) -> QuerySet[DownloadEvent]:
    """Downloads in the organization or under its licenses; empty unless the actor may see it."""
    access = organization_access(actor=actor, organization=organization)
    if access is None or not access.allows(Action.VIEW_DOWNLOAD_LOG):
        return DownloadEvent.objects.none()
    return (
        DownloadEvent.objects.filter(Q(organization=organization) | Q(license__owner=organization))
        .select_related(
            "user",
            "organization",
            "partner",
            "file__release__version__product",
            "license",
            "serial",
        )
        .order_by("-created_at", "-pk")
    )
