"""FileConnect writes: adding files to releases, withdrawing releases, logging downloads."""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import CharField
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _

from licensing.models import ProductVersion
from licensing.signing import key_id, published_keys
from portal.models import Organization, User
from portal.requestcontext import current_delegation
from portal.services import audit_record

from .integrity import Digest, DigestingReader, digest_sign, signature_valid
from .models import DownloadEvent, Release, ReleaseFile
from .selectors import Basis, release_files_signed_by_other_keys
from .storage import fileconnect_storage, storage_name_for

logger = logging.getLogger(__name__)


class FileConnectError(Exception):
    """An illegal FileConnect state change; the message says what to do."""


def release_file_add(
    *,
    version: ProductVersion,
    platform: str,
    source: BinaryIO,
    filename: str,
    actor: User | None,
    language: str = "",
    release: Release | None = None,
    released_on: date | None = None,
    notes: str = "",
) -> ReleaseFile:
    """Streams a file into storage, computing its size, SHA-256 and signature on the way.

    The file goes to the given release, else the version's newest live release, else a new
    release (dated `released_on`, by default the version's release date). The upload happens
    outside any transaction, so a multi-gigabyte copy never holds a database lock; a failure
    after it removes the stored copy.
    """
    display_name, platform, language = release_file_labels(
        filename=filename, platform=platform, language=language
    )
    if release is not None and release.version_id != version.pk:
        raise FileConnectError(_("This release belongs to another product version."))
    # Checked again under the release's lock once stored; refused now, nothing is uploaded.
    target = release or _newest_live_release(version)
    if target is not None:
        release_file_name_check(release=target, display_name=display_name)
    storage = fileconnect_storage()
    name, digest = _store(storage, source, version=version, display_name=display_name)
    try:
        signature, signing_key_id = digest_sign(digest)
        return _release_file_record(
            version=version,
            release=release,
            released_on=released_on,
            notes=notes,
            actor=actor,
            fields={
                "platform": platform,
                "language": language,
                "display_name": display_name,
                "storage_name": name,
                "size": digest.size,
                "sha256": digest.hex,
                "signature": signature,
                "key_id": signing_key_id,
                "content_type": _content_type(display_name),
            },
        )
    except BaseException:
        _discard(storage, name)
        raise


def release_file_labels(*, filename: str, platform: str, language: str) -> tuple[str, str, str]:
    """The display name, platform and language a file is listed under, as stored: the file
    name made safe to save under (no folder, spaces as underscores), blanks collapsed."""
    platform = " ".join(platform.split())
    language = " ".join(language.split())
    basename = filename.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        display_name = get_valid_filename(basename)
    except SuspiciousFileOperation:
        # Nothing of it is a letter, digit, dot, dash or underscore ("$$$", ".."): uncaught,
        # Django answers the exception with its bare 400 page.
        raise FileConnectError(
            _(
                "“%(name)s” cannot name a download: rename the file with letters, digits, dots, "
                "dashes or underscores, for example setup-1.0.zip."
            )
            % {"name": basename}
        ) from None
    if not platform:
        raise FileConnectError(_("Name the platform of the file, for example Windows x64."))
    _check_lengths(display_name=display_name, platform=platform, language=language)
    return display_name, platform, language


def release_file_name_check(
    *, release: Release, display_name: str, excluding: ReleaseFile | None = None
) -> None:
    """Refuses a name another live file of the release has (a withdrawn one's may be reused)."""
    namesakes = ReleaseFile.objects.filter(
        release_id=release.pk, display_name=display_name, withdrawn_at__isnull=True
    )
    if excluding is not None:
        namesakes = namesakes.exclude(pk=excluding.pk)
    if namesakes.exists():
        # Two files of one release under one name: customers could not tell them apart, and
        # the Verify panel's commands (./NAME) would check the wrong one.
        raise FileConnectError(
            _(
                "Another file of this release is already named %(name)s: choose another name, "
                "or withdraw that file first."
            )
            % {"name": display_name}
        )


def _newest_live_release(version: ProductVersion, *, lock: bool = False) -> Release | None:
    """The release a file added without one goes to."""
    releases = Release.objects.filter(version=version, withdrawn_at__isnull=True)
    if lock:
        releases = releases.select_for_update()
    return releases.order_by("-released_on", "-pk").first()


def _content_type(display_name: str) -> str:
    return mimetypes.guess_type(display_name)[0] or "application/octet-stream"


def _check_lengths(*, display_name: str, platform: str, language: str) -> None:
    """Refuses a value longer than its column, before anything is stored: the database would
    refuse it only after the upload, with a 500 on PostgreSQL."""
    for name, value, message in (
        (
            "display_name",
            display_name,
            _("The file name has %(length)d characters: rename the file to at most %(limit)d."),
        ),
        (
            "platform",
            platform,
            _("The platform has %(length)d characters: shorten it to at most %(limit)d."),
        ),
        (
            "language",
            language,
            _("The language has %(length)d characters: shorten it to at most %(limit)d."),
        ),
    ):
        field = ReleaseFile._meta.get_field(name)
        assert isinstance(field, CharField)
        limit = field.max_length
        if limit is not None and len(value) > limit:
            raise FileConnectError(message % {"length": len(value), "limit": limit})


def _store(
    storage: Storage, source: BinaryIO, *, version: ProductVersion, display_name: str
) -> tuple[str, Digest]:
    """Copies the source into storage once, hashing on the way; checks nothing was lost."""
    reader = DigestingReader(source)
    name = storage.save(
        storage_name_for(sku=version.product.sku, version=version.version, filename=display_name),
        File(reader, name=display_name),  # type: ignore[arg-type]
    )
    try:
        if not reader.exhausted():
            # A storage that stopped reading before the end stored a truncated file.
            raise FileConnectError(_("The storage did not take the whole file: try again."))
        digest = reader.digest()
        stored_size = storage.size(name)
        if stored_size != digest.size:
            raise FileConnectError(
                _("The storage holds %(stored)s bytes of the %(read)s bytes read: try again.")
                % {"stored": stored_size, "read": digest.size}
            )
    except BaseException:
        _discard(storage, name)
        raise
    return name, digest


def _discard(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception:
        # The original error is the one to report; the orphan is logged for clean-up.
        logger.exception("FileConnect: could not remove %s after a failed add", name)


@transaction.atomic
def _release_file_record(
    *,
    version: ProductVersion,
    release: Release | None,
    released_on: date | None,
    notes: str,
    actor: User | None,
    fields: dict[str, object],
) -> ReleaseFile:
    # The version row lock serialises two uploads of a version without a release (a Windows
    # and a Linux installer added at once): the second sees the first one's new release.
    ProductVersion.objects.select_for_update().filter(pk=version.pk).first()
    # The release row lock also serialises this file's name with a relabel or a restore in the
    # same release (release_file_name_check).
    if release is not None:
        release = Release.objects.select_for_update().get(pk=release.pk)
        if release.is_withdrawn:
            raise FileConnectError(_("This release is withdrawn: restore it before adding files."))
    else:
        release = _newest_live_release(version, lock=True)
        if release is None:
            release = Release.objects.create(
                version=version, released_on=released_on or version.released_on, notes=notes
            )
            audit_record(
                action="release.created",
                actor=actor,
                obj=release,
                details={"product": version.product.sku, "version": version.version},
            )
    release_file_name_check(release=release, display_name=str(fields["display_name"]))
    release_file = ReleaseFile.objects.create(release=release, created_by=actor, **fields)
    audit_record(
        action="release.file_added",
        actor=actor,
        obj=release_file,
        details={
            "release": release.pk,
            "name": release_file.display_name,
            "size": release_file.size,
            "sha256": release_file.sha256,
        },
    )
    return release_file


@transaction.atomic
def release_save(*, release: Release, actor: User | None) -> Release:
    """Creates or edits a release (date and notes) from admin, with an audit event."""
    created = release.pk is None
    release.save()
    audit_record(
        action="release.created" if created else "release.changed",
        actor=actor,
        obj=release,
        details={"version": str(release.version), "released_on": release.released_on.isoformat()},
    )
    return release


def _set_withdrawn(obj: Release | ReleaseFile, *, withdrawn: bool) -> bool:
    """Withdraws or restores a release or a file unless it already is; whether it changed.
    Conditional on the current state, so two staff members clicking at once audit it once."""
    return bool(
        type(obj)
        ._default_manager.filter(pk=obj.pk, withdrawn_at__isnull=withdrawn)
        .update(withdrawn_at=timezone.now() if withdrawn else None)
    )


@transaction.atomic
def release_withdraw(*, release: Release, actor: User | None) -> Release:
    """Stops offering and serving a release's files; the files and their log stay."""
    if not _set_withdrawn(release, withdrawn=True):
        raise FileConnectError(_("This release is already withdrawn."))
    audit_record(action="release.withdrawn", actor=actor, obj=release)
    release.refresh_from_db()
    return release


@transaction.atomic
def release_restore(*, release: Release, actor: User | None) -> Release:
    """Offers a withdrawn release's files again."""
    if not _set_withdrawn(release, withdrawn=False):
        raise FileConnectError(_("This release is not withdrawn."))
    audit_record(action="release.restored", actor=actor, obj=release)
    release.refresh_from_db()
    return release


def release_file_withdraw(*, release_file: ReleaseFile, actor: User | None) -> ReleaseFile:
    """Stops offering and serving one file (a wrong upload) while the rest of its release
    stays; the file and its download log stay."""
    return _release_file_withdrawn_set(release_file, withdrawn=True, actor=actor)


def release_file_restore(*, release_file: ReleaseFile, actor: User | None) -> ReleaseFile:
    """Offers a withdrawn file again (if its release is live)."""
    return _release_file_withdrawn_set(release_file, withdrawn=False, actor=actor)


@transaction.atomic
def _release_file_withdrawn_set(
    release_file: ReleaseFile, *, withdrawn: bool, actor: User | None
) -> ReleaseFile:
    if not withdrawn:
        # A file added or relabelled under its name while it was withdrawn keeps the name.
        release = Release.objects.select_for_update().get(pk=release_file.release_id)
        release_file_name_check(
            release=release, display_name=release_file.display_name, excluding=release_file
        )
    if not _set_withdrawn(release_file, withdrawn=withdrawn):
        raise FileConnectError(
            _("This file is already withdrawn.") if withdrawn else _("This file is not withdrawn.")
        )
    audit_record(
        action="release.file_withdrawn" if withdrawn else "release.file_restored",
        actor=actor,
        obj=release_file,
        details={"release": release_file.release_id, "name": release_file.display_name},
    )
    release_file.refresh_from_db()
    return release_file


@transaction.atomic
def release_file_relabel(
    *,
    release_file: ReleaseFile,
    display_name: str,
    platform: str,
    language: str,
    actor: User | None,
) -> ReleaseFile:
    """Corrects the name, platform and language a file is offered under, audited with what
    they were. The content never changes: a new content is a new file (new checksum and
    signature), added and the wrong one withdrawn."""
    if "/" in display_name or "\\" in display_name:
        # On upload a folder is dropped from the browser's file name; typed here it is a mistake
        # ("../setup.zip" was saved as "setup.zip" without a word).
        raise FileConnectError(_("A file name cannot contain / or \\: type the name alone."))
    display_name, platform, language = release_file_labels(
        filename=display_name, platform=platform, language=language
    )
    labels = {"display_name": display_name, "platform": platform, "language": language}
    # The release first, as when a file is added: names in a release change one at a time.
    release = Release.objects.select_for_update().get(pk=release_file.release_id)
    current = ReleaseFile.objects.select_for_update().get(pk=release_file.pk)
    release_file_name_check(release=release, display_name=display_name, excluding=current)
    changes = {
        name: [getattr(current, name), value]
        for name, value in labels.items()
        if getattr(current, name) != value
    }
    if changes:
        # The content type follows the name, as when the file was added: a corrected
        # extension serves the right type.
        ReleaseFile.objects.filter(pk=current.pk).update(
            **labels, content_type=_content_type(display_name)
        )
        audit_record(
            action="release.file_changed",
            actor=actor,
            obj=current,
            details={"release": current.release_id, "changes": changes},
        )
    release_file.refresh_from_db()
    return release_file


def download_event_start(
    *,
    actor: User,
    organization: Organization,
    file: ReleaseFile,
    basis: Basis,
    range_header: str,
    bytes_requested: int,
    delivery: str,
) -> DownloadEvent:
    """Logs a download as it begins; a transfer the portal streams is finished by
    download_event_finish, one handed to nginx or S3 is logged as handed off."""
    handed_off = delivery != DownloadEvent.Delivery.STREAM
    delegation = current_delegation()
    return DownloadEvent.objects.create(
        user=actor,
        organization=organization,
        partner=(
            delegation.partner
            if delegation is not None and delegation.customer_id == organization.pk
            else None
        ),
        file=file,
        license=basis.license,
        serial=basis.serial,
        # Logged as sent, minus what a text column cannot hold (NUL and other controls).
        range_header="".join(ch for ch in range_header[:200] if ch.isprintable()),
        bytes_requested=bytes_requested,
        delivery=delivery,
        status=DownloadEvent.Status.HANDED_OFF if handed_off else DownloadEvent.Status.STARTED,
        finished_at=timezone.now() if handed_off else None,
    )


def download_event_finish(*, event_id: int, status: str, bytes_sent: int) -> bool:
    """Records how a streamed download ended; only a started event changes, once."""
    return bool(
        DownloadEvent.objects.filter(pk=event_id, status=DownloadEvent.Status.STARTED).update(
            status=status, bytes_sent=bytes_sent, finished_at=timezone.now()
        )
    )


@dataclass
class ResignResult:
    resigned: list[ReleaseFile] = field(default_factory=list)
    # Files whose signature no published key verifies: signing them again would vouch for a
    # SHA-256 nobody can show the portal ever signed.
    refused: list[ReleaseFile] = field(default_factory=list)


def release_files_resign(*, actor: User | None) -> ResignResult:
    """Signs again, with the current signing key, every release file signed with another key
    (after a rotation), once its old signature is checked; each file audited."""
    result = ResignResult()
    old_keys = {key.key_id: key.public_key for key in published_keys()}
    for release_file in release_files_signed_by_other_keys(key_id=key_id()):
        old_key = old_keys.get(release_file.key_id)
        if old_key is None or not signature_valid(
            sha256_hex=release_file.sha256,
            signature_b64=release_file.signature,
            public_key=old_key,
        ):
            result.refused.append(release_file)
            continue
        if _release_file_resign(release_file, actor=actor):
            result.resigned.append(release_file)
    return result


@transaction.atomic
def _release_file_resign(release_file: ReleaseFile, *, actor: User | None) -> bool:
    # The signature covers the digest alone, so the stored SHA-256 is all there is to sign: no
    # multi-gigabyte file is read again.
    signature, signing_key_id = digest_sign(
        Digest(size=release_file.size, sha256=bytes.fromhex(release_file.sha256))
    )
    # Conditional on the signature checked above: a concurrent run that re-signed it first wins.
    updated = ReleaseFile.objects.filter(
        pk=release_file.pk, key_id=release_file.key_id, signature=release_file.signature
    ).update(signature=signature, key_id=signing_key_id)
    if not updated:
        return False
    audit_record(
        action="release.file_resigned",
        actor=actor,
        obj=release_file,
        details={
            "name": release_file.display_name,
            "retired_key_id": release_file.key_id,
            "key_id": signing_key_id,
        },
    )
    release_file.signature, release_file.key_id = signature, signing_key_id
    return True
