"""Manage my licenses: sharing, custom data, support registration, rehost, renewal, resend."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal.emails import queue_email
from portal.middleware import BIDI_CONTROLS
from portal.models import AuditEvent, Membership, Organization, User
from portal.ratelimit import address_budget, address_serialize, invitations_refusal
from portal.services import audit_record

from ..codes import canonical_key, generate_license_key
from ..models import (
    CustomField,
    CustomFieldValue,
    License,
    LicenseShare,
    RetiredKey,
    SerialNumber,
    SupportRegistration,
)
from .issue import (
    LicensingError,
    license_email_queue,
    license_email_recipients,
    partner_acts_for,
    serial_check,
    serial_redeem,
)

REGISTRATION_FIELDS = SupportRegistration.FIELDS


def _require_owner_admin(actor: User, license: License) -> None:
    if not Membership.objects.filter(
        user=actor, organization_id=license.owner_id, role=Membership.Role.ADMIN
    ).exists():
        raise LicensingError(
            _("Only administrators of the organization that owns a license can share it.")
        )


def history_only_refusal(license: License) -> str | None:
    """Why a superseded or revoked license's data, contacts and shares are no longer changed
    (a sentence), or None for an active one.

    Its custom values and shares were copied to the license that upgraded it (license_issue),
    which is the one in use: a change here would reach nobody and read as if it did.
    """
    if license.status == License.Status.ACTIVE:
        return None
    if license.status == License.Status.REVOKED:
        # Nothing replaced it: there is no other license to make the change on.
        return _(
            "This license was revoked: it is kept as history and can no longer be changed. "
            "If you think this is a mistake, contact customer care."
        )
    return _(
        "This license was superseded: it is kept as history and can no longer be changed. "
        "Make the change on the license that replaced it."
    )


def _audit_license(
    action: str, *, license: License, actor: User | None, details: dict[str, Any] | None = None
) -> None:
    audit_record(
        action=action, actor=actor, organization=license.owner, obj=license, details=details or {}
    )


# ---------------------------------------------------------------------------------------------
# Resend, support registration


@transaction.atomic
def license_email_again(*, license: License, actor: User) -> list[str]:
    """Emails the key and a fresh license file again to the technical contact (and the actor).

    The technical contact (and the owner's administrators, when copied) read who asked for it
    when that was a partner or someone the license is shared with, as for a renewal.

    At most PORTAL_KEY_EMAILS_PER_LICENSE_PER_HOUR times per license, and
    PORTAL_KEY_EMAILS_PER_ADDRESS_PER_HOUR times per address across all licenses: the
    technical contact's (whatever address someone allowed to manage data typed) and those of
    the owner's administrators copied on a license a partner obtained or acts on. The button
    must not be a way to fill a mailbox, however many licenses name or copy it; the person
    clicking is not counted (their own mailbox). The license row is locked, so two requests for
    one license count one after the other; the addresses are locked too, in order
    (portal.ratelimit.address_serialize), so are two for two licenses.
    """
    # Everything below reads the row as it is under the lock, not the caller's copy: a request
    # that waited here for a rehost, an upgrade or a registration change would otherwise email
    # the key the rehost revoked, a file for seats moved to another version, or the old contact.
    license = (
        License.objects.select_for_update(of=("self",))
        .select_related("version__product", "owner", "registration", "partner", "issued_by")
        .get(pk=license.pk)
    )
    # The email says "here is your license key, install it": never for a key that was replaced.
    if license.status != License.Status.ACTIVE:
        raise LicensingError(
            _(
                "This license is no longer active, so its key is not emailed again and no "
                "license file is issued for it any more."
            )
        )
    sent = AuditEvent.objects.filter(
        action="license.emailed",
        object_type="licensing.license",
        object_id=str(license.pk),
        created_at__gte=timezone.now() - timedelta(hours=1),
    ).count()
    if sent >= settings.PORTAL_KEY_EMAILS_PER_LICENSE_PER_HOUR:
        raise LicensingError(
            _(
                "This license's key was already emailed %(count)d times in the last hour. Wait "
                "an hour before sending it again, or download its license file from this page."
            )
            % {"count": sent}
        )
    contact = license.registration.technical_email.strip().lower()
    recipients = license_email_recipients(
        license, actor, partner_acting=partner_acts_for(license.owner)
    )
    copied = sorted({r.strip().lower() for r in recipients} - {contact, actor.email.lower()})
    # In one order, so two requests that share two addresses do not wait for each other.
    for address in sorted({contact, *copied}):
        address_serialize(address)
    for address in (contact, *copied):
        budget = address_budget(
            address=address,
            action="license.emailed",
            limit=settings.PORTAL_KEY_EMAILS_PER_ADDRESS_PER_HOUR,
        )
        if budget.exhausted:
            raise LicensingError(
                _address_refusal(
                    address, budget.minutes_left, license=license, copy=address != contact
                )
            )
    # "again": the owner's people read who asked, when a partner or a share recipient did.
    license_email_queue(license=license, acting_user=actor, event="issued", context={"again": True})
    # `contact` and `copied` are what address_budget counts.
    _audit_license(
        "license.emailed",
        license=license,
        actor=actor,
        details={"to": recipients, "contact": contact, "copied": copied},
    )
    return recipients


def _address_refusal(address: str, minutes: int, *, license: License, copy: bool) -> str:
    if not copy:
        return ngettext(
            "%(email)s, this license's technical contact, was already emailed many license "
            "keys in the last hour. To protect that mailbox, try again in %(minutes)d "
            "minute, or download the license file from this page.",
            "%(email)s, this license's technical contact, was already emailed many license "
            "keys in the last hour. To protect that mailbox, try again in %(minutes)d "
            "minutes, or download the license file from this page.",
            minutes,
        ) % {"email": address, "minutes": minutes}
    return ngettext(
        "%(email)s, an administrator of %(organization)s who gets a copy of this license's "
        "emails, was already emailed many license keys in the last hour. To protect that "
        "mailbox, try again in %(minutes)d minute, or download the license file from this page.",
        "%(email)s, an administrator of %(organization)s who gets a copy of this license's "
        "emails, was already emailed many license keys in the last hour. To protect that "
        "mailbox, try again in %(minutes)d minutes, or download the license file from this "
        "page.",
        minutes,
    ) % {"email": address, "organization": license.owner.name, "minutes": minutes}


@transaction.atomic
def registration_update(
    *, license: License, actor: User, data: dict[str, str]
) -> SupportRegistration:
    """Edits the support registration of one license; the audit event lists the changes.

    Copy on write: licenses of one voucher conversion share a registration row, and so do an
    upgrade's new license and its source. When other licenses use the row, the edited license
    gets its own copy with the changes and the others keep theirs untouched.
    """
    # The license row first, then its registration: a concurrent edit of another license that
    # shares the row waits, and then counts the sharers as they are after this one committed.
    registration_id = (
        License.objects.select_for_update()
        .values_list("registration_id", flat=True)
        .get(pk=license.pk)
    )
    registration = SupportRegistration.objects.select_for_update().get(pk=registration_id)
    changes = registration.changes(data)
    if not changes:
        return registration
    details: dict[str, Any] = {"changes": changes}
    shared = License.objects.filter(registration_id=registration.pk).exclude(pk=license.pk)
    if shared.exists():
        copied_from = registration.pk
        registration.pk = None
        registration._state.adding = True
        registration.created_at = timezone.now()
        for name, change in changes.items():
            setattr(registration, name, change["to"])
        registration.save()
        License.objects.filter(pk=license.pk).update(registration=registration)
        license.registration = registration
        details["copied_from"] = copied_from
    else:
        for name, change in changes.items():
            setattr(registration, name, change["to"])
        registration.save()
    _audit_license("license.registration_changed", license=license, actor=actor, details=details)
    return registration


# ---------------------------------------------------------------------------------------------
# Sharing


@dataclass
class ShareResult:
    created: list[LicenseShare] = field(default_factory=list)
    updated: list[LicenseShare] = field(default_factory=list)
    skipped: int = 0  # superseded or revoked licenses of the selection, not shared


def normalize_share_email(raw: str) -> str:
    """A share recipient's address, or ValidationError with what to fix."""
    email = (raw or "").strip().lower()
    if not email:
        raise ValidationError(_("Enter the email address of the person to share with."))
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError(
            _("“%(email)s” is not an email address. Enter one address, like name@example.com.")
            % {"email": raw.strip()}
        ) from exc
    return email


@transaction.atomic
def license_share(*, licenses: list[License], email: str, access: str, actor: User) -> ShareResult:
    """Shares licenses with one person; an existing account sees them at once, others by link."""
    email = normalize_share_email(email)
    if access not in LicenseShare.Access.values:
        raise LicensingError(_("Choose read-only or manage access."))
    if not licenses:
        raise LicensingError(_("Select at least one license to share."))
    if email == actor.email.lower():
        raise LicensingError(_("You cannot share a license with yourself."))
    # Superseded and revoked licenses are history (history_only_refusal): a selection that
    # includes some (the list with every status) shares the others and says so.
    active = [license for license in licenses if license.status == License.Status.ACTIVE]
    if len(licenses) == 1 and not active:
        raise LicensingError(history_only_refusal(licenses[0]) or "")
    if not active:
        raise LicensingError(
            _(
                "The selected licenses are all superseded or revoked: they are kept as history "
                "and cannot be shared. Select current licenses."
            )
        )
    skipped = len(licenses) - len(active)
    licenses = active
    # Serialises the owner's shares, so that the limit on emails to people counts each one.
    owner = Organization.objects.select_for_update().get(pk=licenses[0].owner_id)
    refusal = invitations_refusal(actor=actor, organization=owner)
    if refusal:
        raise LicensingError(refusal)
    recipient = User.objects.filter(email__iexact=email).first()
    result = ShareResult(skipped=skipped)
    for license in licenses:
        _require_owner_admin(actor, license)
        share = (
            LicenseShare.objects.select_for_update()
            .filter(license=license, email=email, revoked_at__isnull=True)
            .first()
        )
        if share is None:
            share = LicenseShare.objects.create(
                license=license, email=email, access=access, user=recipient, created_by=actor
            )
            result.created.append(share)
        elif share.access != access:
            share.access = access
            share.save(update_fields=["access"])
            result.updated.append(share)
        else:
            continue
        _audit_license(
            "license.shared",
            license=license,
            actor=actor,
            details={"email": email, "access": access},
        )
    shares = result.created + result.updated
    if shares:
        queue_email(
            template="license_shared",
            to=[email],
            context={
                "shares": shares,
                "organization": licenses[0].owner,
                "sharer": actor,
                "has_account": recipient is not None,
                "token": shares[0].token,
            },
        )
    return result


@transaction.atomic
def share_revoke(*, share: LicenseShare, actor: User) -> None:
    """Ends a share; the recipient loses access on their next request."""
    _require_owner_admin(actor, share.license)
    updated = LicenseShare.objects.filter(pk=share.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:  # a second click, a page from before, or another administrator meanwhile
        raise LicensingError(_("This share was already revoked."))
    _audit_license(
        "license.share_revoked",
        license=share.license,
        actor=actor,
        details={"email": share.email},
    )


@transaction.atomic
def share_accept(*, token: str, user: User) -> int:
    """Binds the shares sent to the user's address to their account, from an emailed link."""
    share = LicenseShare.objects.filter(token=token, revoked_at__isnull=True).first()
    if share is None:
        raise LicensingError(_("This link is no longer valid: the share was withdrawn."))
    if share.email.lower() != user.email.lower():
        raise LicensingError(
            _("These licenses were shared with %(email)s. Log in with that address to see them.")
            % {"email": share.email}
        )
    return LicenseShare.objects.filter(
        email=share.email, user__isnull=True, revoked_at__isnull=True
    ).update(user=user)


def shares_bind_verified_email(*, user: User, email: str) -> int:
    """Gives a user the shares sent to an address they have just proven is theirs."""
    if email.strip().lower() != user.email.lower():
        return 0
    return LicenseShare.objects.filter(
        email=email.strip().lower(), user__isnull=True, revoked_at__isnull=True
    ).update(user=user)


# ---------------------------------------------------------------------------------------------
# Custom data


def custom_value_clean(custom_field: CustomField, raw: Any, *, current: str = "") -> str:
    """The stored text of a value for a field, or ValidationError saying what to type.

    `current`: the license's value now. A choice that is no longer among the field's options
    (they were edited since it was chosen) is kept when it comes back unchanged, rather than
    refused or wiped when other values of the license are saved.
    """
    text = "" if raw is None else str(raw).strip()
    if not text:
        if custom_field.required:
            raise ValidationError(_("%(field)s is required.") % {"field": custom_field.name})
        return ""
    if "\x00" in text:
        raise ValidationError(
            _("%(field)s cannot contain the character NUL: retype the value.")
            % {"field": custom_field.name}
        )
    if custom_field.field_type == CustomField.Type.NUMBER:
        return _custom_number(custom_field, text)
    if custom_field.field_type == CustomField.Type.DATE:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError as exc:
            raise ValidationError(
                _("%(field)s must be a date written YYYY-MM-DD; “%(value)s” is not.")
                % {"field": custom_field.name, "value": text}
            ) from exc
    if custom_field.field_type == CustomField.Type.CHOICE:
        options = custom_field.choice_list
        match = next((o for o in options if o.lower() == text.lower()), None)
        if match is None and current and text == current:
            return current
        if match is None:
            raise ValidationError(
                _("%(field)s must be one of: %(options)s.")
                % {"field": custom_field.name, "options": ", ".join(options)}
            )
        return match
    if len(text) > 500:
        raise ValidationError(
            _("%(field)s is limited to 500 characters.") % {"field": custom_field.name}
        )
    return text


# Numbers are stored as exact decimal text. Bounds keep that text short whatever is typed
# ("1e999999" would otherwise be a million digits) and no digit is ever rounded away.
NUMBER_MAX_CHARS = 60
NUMBER_MAX_INTEGER_DIGITS = 30
NUMBER_MAX_DECIMALS = 20
# A comma is a decimal comma ("3,5", as pt-BR writes it) and a point a decimal point, except
# where either reads as a thousands separator: "1,000" is a thousand to an English reader and 1
# to a Brazilian one, "1.000" the other way round, so both are refused rather than stored as 1.
# A leading 0 is no thousands group: "0,250" and "0.250" are a quarter to anyone.
THOUSANDS_SEPARATED = re.compile(r"[+-]?[1-9][0-9]{0,2}([,.][0-9]{3})+")


def _ambiguous_number(custom_field: CustomField, text: str) -> ValidationError:
    """The refusal of a number written with thousands separators, saying how to write it."""
    whole = text.replace(",", "").replace(".", "")
    if len(re.findall(r"[,.]", text)) > 1:
        return ValidationError(
            _("%(field)s: write “%(value)s” without thousands separators: %(whole)s.")
            % {"field": custom_field.name, "value": text, "whole": whole}
        )
    # The decimal reading, written so that it cannot be read the other way: "1.000" -> "1",
    # "1,500" -> "1,5", "1.234" -> "1.2340".
    integer, mark, fraction = re.split(r"([,.])", text)
    fraction = fraction.rstrip("0")
    decimal = f"{integer}{mark}{fraction}" if fraction else integer
    if len(fraction) == 3:
        decimal += "0"
    return ValidationError(
        _(
            "%(field)s: “%(value)s” could mean %(whole)s or %(decimal)s. Type %(whole)s or "
            "%(decimal)s, whichever you mean."
        )
        % {"field": custom_field.name, "value": text, "whole": whole, "decimal": decimal}
    )


def _custom_number(custom_field: CustomField, text: str) -> str:
    invalid = ValidationError(
        _(
            "%(field)s must be a number, like 42 or 3.5, with at most %(integer)d digits before "
            "the decimal point and %(decimals)d after."
        )
        % {
            "field": custom_field.name,
            "integer": NUMBER_MAX_INTEGER_DIGITS,
            "decimals": NUMBER_MAX_DECIMALS,
        }
    )
    if len(text) > NUMBER_MAX_CHARS:
        raise invalid
    if THOUSANDS_SEPARATED.fullmatch(text):
        raise _ambiguous_number(custom_field, text)
    try:
        number = Decimal(text.replace(",", "."))
    except InvalidOperation as exc:
        raise invalid from exc
    if not number.is_finite():
        raise invalid
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    if not any(digits):
        return "0"
    # Without the trailing zeros of the fraction: 3.50 counts as 3.5.
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if exponent < -NUMBER_MAX_DECIMALS or len(digits) + exponent > NUMBER_MAX_INTEGER_DIGITS:
        raise invalid
    # Built from its digits, not normalize()d: the context's 28-digit precision would round.
    return format(Decimal((sign, digits, exponent)), "f")


@transaction.atomic
def custom_values_set(
    *,
    licenses: list[License],
    values: dict[int, str],
    actor: User,
    fields: list[CustomField] | None = None,
) -> int:
    """Writes cleaned custom values on licenses; empty means remove. Returns licenses changed."""
    if fields is None:
        owner_ids = {license.owner_id for license in licenses}
        fields = list(CustomField.objects.filter(organization_id__in=owner_ids))
    by_id = {f.pk: f for f in fields}
    existing = {
        (v.license_id, v.field_id): v
        for v in CustomFieldValue.objects.filter(license__in=licenses, field_id__in=values)
    }
    changed = 0
    for license in licenses:
        if license.status != License.Status.ACTIVE:
            continue  # kept as history (history_only_refusal): the caller says how many
        changes: dict[str, dict[str, str]] = {}
        for field_id, new in values.items():
            custom_field = by_id.get(field_id)
            if custom_field is None or custom_field.organization_id != license.owner_id:
                continue
            current = existing.get((license.pk, field_id))
            old = current.value if current else ""
            if old == new:
                continue
            if new:
                CustomFieldValue.objects.update_or_create(
                    license=license, field=custom_field, defaults={"value": new}
                )
            elif current is not None:
                current.delete()
            changes[custom_field.name] = {"from": old, "to": new}
        if changes:
            changed += 1
            _audit_license(
                "license.custom_data_changed",
                license=license,
                actor=actor,
                details={"changes": changes},
            )
    return changed


@dataclass
class CsvRow:
    line: int
    key: str
    license_id: str = ""
    changes: dict[str, dict[str, str]] = field(default_factory=dict)
    values: dict[int, str] = field(default_factory=dict)
    # The license's value each change replaces, by field id: applying writes a change only
    # while the license still holds it.
    replaces: dict[int, str] = field(default_factory=dict)
    error: str = ""


@dataclass
class CsvPreview:
    rows: list[CsvRow]
    error: str = ""
    # Header columns that are not custom fields (an export's product, status…): not read.
    ignored: list[str] = field(default_factory=list)

    @property
    def changing(self) -> list[CsvRow]:
        return [row for row in self.rows if not row.error and row.changes]

    @property
    def refused(self) -> list[CsvRow]:
        return [row for row in self.rows if row.error]


MAX_CSV_BYTES = 2 * 1024 * 1024

# The list's CSV export (licensing.views.licenses): these columns, then one per custom field.
# A custom field cannot take one of these names (forms.CustomFieldForm), and an upload that
# starts with them reads them as the export's own, whatever fields older names match.
EXPORT_HEADER = [
    "key",
    "product",
    "sku",
    "version",
    "quantity",
    "host_id",
    "status",
    "maintenance_start",
    "maintenance_end",
    "owner",
    "account",
    "source",
    "source_ref",
    "company",
    "technical_contact",
    "technical_email",
    "issued_at",
]
KEY_HEADERS = ("key", "license key")
# pt-BR Excel saves "CSV" with ';' between cells (',' is its decimal comma).
CSV_DELIMITERS = (",", ";")


@dataclass
class _CsvColumns:
    key: int
    fields: dict[int, int]  # column index by field id
    ignored: list[str]


def _csv_columns(names: list[str], fields: list[CustomField]) -> _CsvColumns | str:
    """Which column holds the key and which each field, or a sentence saying what is wrong.

    An export's own columns are read as its own by their place, not matched to fields: a
    field named "Status" before such names were reserved got the export's "status" column
    ("active") instead of its own, on every license of a file uploaded unchanged.
    """
    builtin = (
        len(EXPORT_HEADER)
        if [n.lower() for n in names[: len(EXPORT_HEADER)]] == (EXPORT_HEADER)
        else 0
    )
    by_name = {f.name.lower(): f for f in fields}
    key: int | None = 0 if builtin else None
    columns: dict[int, int] = {}
    ignored = names[1:builtin]
    for index, name in enumerate(names[builtin:], start=builtin):
        lower = name.lower()
        if not name:  # no header: nothing to name it by, nothing read
            continue
        custom_field = None if lower in KEY_HEADERS else by_name.get(lower)
        if custom_field is None and lower not in KEY_HEADERS:
            ignored.append(name)
            continue
        if (key if custom_field is None else columns.get(custom_field.pk)) is not None:
            return _(
                "The column “%(column)s” appears more than once in the header row. Keep one "
                "of them and upload the file again."
            ) % {"column": name}
        if custom_field is None:
            key = index
        else:
            columns[custom_field.pk] = index
    if key is None or not columns:
        expected = ", ".join(["key", *[f.name for f in fields]])
        return _(
            "The CSV's columns are not right (a “key” column and at least one custom field "
            "column are needed). Use a header row with: %(expected)s."
        ) % {"expected": expected}
    return _CsvColumns(key=key, fields=columns, ignored=ignored)


def _csv_delimiter(text: str) -> str:
    """',' or ';': the one that gives the header row a key column (',' when neither does)."""
    for delimiter in CSV_DELIMITERS:
        try:
            header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        except csv.Error:
            continue
        if any(csv_unguarded(h.strip()).lower() in KEY_HEADERS for h in header):
            return delimiter
    return CSV_DELIMITERS[0]


def _csv_error(exc: csv.Error, line: int) -> str:
    """What is wrong with a file the csv module could not read, in the reader's language."""
    if "field larger than field limit" in str(exc):  # the module's only error in this dialect
        return _(
            'Line %(line)d has a cell longer than %(limit)s characters: a quote (") that '
            "opens a cell is probably not closed. Correct it and upload the file again."
        ) % {"line": line, "limit": number_format(csv.field_size_limit(), force_grouping=True)}
    return _(
        "Line %(line)d is not valid CSV. Save the file as “CSV UTF-8” and upload it again."
    ) % {"line": line}


def custom_values_csv_preview(
    *, upload: IO[bytes], licenses: Any, fields: list[CustomField]
) -> CsvPreview:
    """Reads a CSV of key + custom field columns and says what each row would change. No writes.

    `licenses` is the queryset of licenses the actor may manage. Reads no more of `upload` than
    MAX_CSV_BYTES and one byte to see it is larger: the web server lets bodies of 2 GB through
    (release uploads), and one such CSV read whole would exhaust a worker's memory.
    """
    content = upload.read(MAX_CSV_BYTES + 1)
    if len(content) > MAX_CSV_BYTES:
        return CsvPreview([], _("The file is larger than 2 MB. Split it into smaller files."))
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return CsvPreview(
            [], _("The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.")
        )
    if "\x00" in text:  # binary, or text no spreadsheet writes; the database refuses NUL too
        return CsvPreview(
            [], _("This is not a CSV file. Save it as “CSV UTF-8” and upload it again.")
        )
    # Every cell, as every typed value is (portal.middleware.BidiControlsMiddleware): a file is
    # just another way to submit the text, and a stored "\u202e..." reversed whatever followed
    # it wherever the value was shown.
    text = text.translate(BIDI_CONTROLS)
    reader = csv.reader(io.StringIO(text), delimiter=_csv_delimiter(text))
    try:
        # Column names as the fields are named: an export guards a name that starts like a
        # formula ("=Site" reads "'=Site"), as it guards the values.
        names = [csv_unguarded(h.strip()) for h in next(reader, [])]
    except csv.Error as exc:
        return CsvPreview([], _csv_error(exc, reader.line_num))
    # A file exported from My licenses comes back with its other columns: they are skipped and
    # listed, so the export → edit → upload round trip needs no column deleting.
    columns = _csv_columns(names, fields)
    if isinstance(columns, str):
        return CsvPreview([], columns)
    raw_rows: list[tuple[int, list[str]]] = []
    try:
        for line, record in enumerate(reader, start=2):
            if record:  # a blank line
                raw_rows.append((line, record))
            if len(raw_rows) > 10_000:
                return CsvPreview([], _("Upload at most 10,000 rows at a time."))
    except csv.Error as exc:
        return CsvPreview([], _csv_error(exc, reader.line_num))
    rows = _csv_rows(raw_rows, columns, licenses=licenses, fields=fields)
    return CsvPreview(rows, ignored=columns.ignored)


def _csv_rows(
    raw_rows: list[tuple[int, list[str]]],
    columns: _CsvColumns,
    *,
    licenses: Any,
    fields: list[CustomField],
) -> list[CsvRow]:
    """What each row of an upload would change, or why it is refused."""

    def cell(record: list[str], index: int) -> str:
        # A short row's missing cells are empty, as csv.DictReader read them.
        return record[index] if index < len(record) else ""

    keys = {canonical_key(cell(record, columns.key)) for _line, record in raw_rows}
    found = {lic.key: lic for lic in licenses.filter(key__in=keys)}
    current = {
        (v.license_id, v.field_id): v.value
        for v in CustomFieldValue.objects.filter(license__in=list(found.values()), field__in=fields)
    }
    by_id = {f.pk: f for f in fields}
    rows: list[CsvRow] = []
    seen: set[str] = set()
    for line, record in raw_rows:
        key = canonical_key(cell(record, columns.key))
        row = CsvRow(line=line, key=key)
        rows.append(row)
        license = found.get(key)
        if license is None:
            row.error = _("No license with this key that you can manage.")
            continue
        if key in seen:
            row.error = _("This key appears more than once in the file.")
            continue
        seen.add(key)
        if refusal := history_only_refusal(license):
            # An export lists superseded and revoked licenses too: uploaded as it is, their
            # history must not change.
            row.error = refusal
            continue
        row.license_id = str(license.pk)
        errors = []
        for field_id, index in columns.fields.items():
            custom_field = by_id[field_id]
            old = current.get((license.pk, custom_field.pk), "")
            try:
                value = custom_value_clean(
                    custom_field, csv_unguarded(cell(record, index)), current=old
                )
            except ValidationError as exc:
                errors.append(" ".join(exc.messages))
                continue
            row.values[custom_field.pk] = value
            if old != value:
                row.changes[custom_field.name] = {"from": old, "to": value}
                row.replaces[custom_field.pk] = old
        if errors:
            row.error = " ".join(errors)
            row.changes = {}
            row.replaces = {}
    return rows


@dataclass(frozen=True)
class CsvApplied:
    changed: int  # licenses changed
    stale: int  # values left as they are: changed by someone else since the preview


@transaction.atomic
def custom_values_csv_apply(
    *, rows: list[dict[str, Any]], licenses: Any, fields: list[CustomField], actor: User
) -> CsvApplied:
    """Writes what a preview showed: each row's changed values, each only if the license still
    holds the value the preview showed it replacing.

    `rows`: {"license": id, "changes": {field id: {"from": old, "to": new}}}, as the preview
    listed them; `licenses` the queryset of licenses the actor may manage. The values the
    preview found unchanged are not written (they would undo a colleague's edit made since, which
    the preview never showed), and a changed one edited since is left as it is now.
    """
    ids = [row["license"] for row in rows]
    # Locked: a second apply, or an edit on the license's page, waits and is then compared to.
    manageable = list(licenses.filter(pk__in=ids).values_list("pk", flat=True))
    by_id = {
        str(lic.pk): lic
        for lic in License.objects.select_for_update().filter(pk__in=manageable).order_by("pk")
    }
    field_ids = {f.pk for f in fields}
    current = {
        (str(v.license_id), v.field_id): v.value
        for v in CustomFieldValue.objects.filter(license_id__in=list(by_id), field__in=fields)
    }
    changed = stale = 0
    for row in rows:
        license = by_id.get(row["license"])
        if license is None:
            continue
        values: dict[int, str] = {}
        for field_id, change in row["changes"].items():
            field_id = int(field_id)
            if field_id not in field_ids:
                continue
            if current.get((row["license"], field_id), "") != change["from"]:
                stale += 1
                continue
            values[field_id] = change["to"]
        if values:
            changed += custom_values_set(
                licenses=[license], values=values, actor=actor, fields=fields
            )
    return CsvApplied(changed=changed, stale=stale)


# Spreadsheet apps run cells that start with these as formulas (CSV injection).
FORMULA_START = frozenset("=+-@\t\r")
# What csv_safe guards: a formula character at the start, after any quotes (so that a value
# that starts with a guard quote of its own keeps it once csv_unguarded takes one off).
GUARDED = re.compile(r"'*[=+\-@\t\r]")
# A cell that is a negative number and nothing else keeps its minus ("-42", "-3.5"); only the
# whole cell: "-2+3+cmd|' /C calc'!A0" starts like a number and is a formula.
NEGATIVE_NUMBER = re.compile(r"-[0-9]+(\.[0-9]+)?")


def csv_safe(value: Any) -> Any:
    """`value` as a spreadsheet will not run it: a leading formula character gets a quote, and
    so does a value that already starts with quotes before one ("'=x" is written "''=x"), so
    that csv_unguarded gives every value back as it was."""
    if isinstance(value, str) and GUARDED.match(value) and not NEGATIVE_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_unguarded(raw: str | None) -> str:
    """A cell as typed: the export's guard quote against spreadsheet formulas comes off."""
    raw = raw or ""
    if raw[:1] == "'" and GUARDED.match(raw, 1):
        return raw[1:]
    return raw


# ---------------------------------------------------------------------------------------------
# Rehost and renewal


def rehost_refusal(license: License, host_id: str) -> str | None:
    """Why `license` cannot move to `host_id` now (a sentence that says what to do), or None.

    Asked before the confirmation page and again, under the row lock, by license_rehost.
    """
    product = license.version.product
    new_host = " ".join((host_id or "").split())
    if not product.node_locked:
        return _("%(product)s is not node-locked: its licenses are not bound to a host.") % {
            "product": product.name
        }
    if license.status != License.Status.ACTIVE:
        return _("Only active licenses can be rehosted.")
    if not new_host:
        return _("Enter the host ID of the new machine.")
    if new_host.lower() == license.host_id.lower():
        return _(
            "The license is already bound to %(host)s. Enter the host ID of the new machine."
        ) % {"host": new_host}
    used = _rehosts_in_last_year(license)
    if used >= product.rehost_limit and not license.rehosts_granted:
        # The limit, not the moves made: a move customer care allowed beyond it counts too.
        return ngettext(
            "This license was rehosted %(count)d times in the last 12 months; %(product)s "
            "allows %(limit)d move a year. Contact customer care to move it again.",
            "This license was rehosted %(count)d times in the last 12 months; %(product)s "
            "allows %(limit)d moves a year. Contact customer care to move it again.",
            product.rehost_limit,
        ) % {"count": used, "product": product.name, "limit": product.rehost_limit}
    return None


def rehost_stamp(license: License) -> str:
    """Names the key a rehost confirmation page was shown for, without the key itself."""
    return hashlib.sha256(license.key.encode()).hexdigest()[:16]


@transaction.atomic
def license_rehost(
    *, license: License, host_id: str, actor: User, stamp: str | None = None
) -> License:
    """Moves a node-locked license to a new host: new key and file, the old key is revoked.

    `stamp` (rehost_stamp of the key the confirmation page named): a license rehosted since
    that page was shown (a colleague, another tab) is refused, instead of revoking a key the
    page did not name, which may already run on the machine it was moved to.
    """
    locked = (
        License.objects.select_for_update().select_related("version__product").get(pk=license.pk)
    )
    if stamp is not None and not hmac.compare_digest(stamp.encode(), rehost_stamp(locked).encode()):
        raise LicensingError(
            _(
                "This license was moved to host %(host)s with a new key while you were "
                "confirming. Check its page, then move it again if you still need to."
            )
            % {"host": locked.host_id}
        )
    new_host = " ".join((host_id or "").split())
    refusal = rehost_refusal(locked, new_host)
    if refusal:
        raise LicensingError(refusal)
    old_key, old_host = locked.key, locked.host_id
    details: dict[str, Any] = {"from_host": old_host, "to_host": new_host, "old_key": old_key}
    # Past the product's limit only by a move customer care granted: this rehost spends it.
    beyond_limit = _rehosts_in_last_year(locked) >= locked.version.product.rehost_limit
    if beyond_limit:
        locked.rehosts_granted -= 1
        details["granted"] = True
    RetiredKey.objects.create(key=old_key, license=locked, host_id=old_host, reason="rehost")
    locked.key = generate_license_key()
    locked.host_id = new_host
    locked.file_issued_at = timezone.now()
    locked.save(update_fields=["key", "host_id", "file_issued_at", "rehosts_granted"])
    _audit_license(
        "license.rehosted", license=locked, actor=actor, details={**details, "key": locked.key}
    )
    license_email_queue(
        license=locked,
        acting_user=actor,
        event="rehosted",
        # The key that stopped working and where it ran: what the reader looks for in their
        # machines and records.
        context={"old_key": old_key, "old_host": old_host},
    )
    return locked


def _rehosts_in_last_year(license: License) -> int:
    since = timezone.now() - timedelta(days=365)
    return RetiredKey.objects.filter(
        license=license, reason="rehost", retired_at__gte=since
    ).count()


def rehosts_left(license: License) -> int:
    """How many more rehosts the license may have in the current 12 months, with the moves
    customer care granted beyond the product's limit."""
    left = license.version.product.rehost_limit - _rehosts_in_last_year(license)
    return max(0, left) + license.rehosts_granted


def renewal_refusal(license: License) -> str | None:
    """Why `license` takes no renewal serial whatever the code (a sentence), or None.

    Asked before a typed code is read, so that a license the page no longer shows as it is (an
    upgrade superseded it meanwhile) neither spends the person's failed-code budget nor gets
    the wizard's "choose which license" message, and again by license_renew_with_serial.
    """
    if license.follows_contract:
        return _(
            "This license was drawn down from an Enterprise Flexible contract: its maintenance "
            "follows the contract, not a renewal serial number."
        )
    if license.status != License.Status.ACTIVE:
        return _("Only active licenses can be renewed.")
    return None


@transaction.atomic
def license_renew_with_serial(
    *, license: License, code: str, organization: Organization, actor: User
) -> License:
    """Applies a renewal serial to one license (the Get-a-key renewal path, from its page)."""
    refusal = renewal_refusal(license)
    if refusal:
        raise LicensingError(refusal)
    # This license is the target: serial_redeem refuses a serial for too few of its seats with
    # both numbers, not with "none of your organization's licenses fits".
    serial = serial_check(
        code=code, organization=organization, today=timezone.localdate(), any_seats=True
    )
    if serial.kind != SerialNumber.Kind.RENEWAL:
        raise LicensingError(
            _(
                "This is not a maintenance renewal serial number. Use “Get a "
                "license key” for new purchases and upgrades."
            )
        )
    if serial.version.product_id != license.version.product_id:
        raise LicensingError(
            _("This renewal serial number is for %(product)s, not for this license.")
            % {"product": serial.version.product.name}
        )
    result = serial_redeem(
        code=code,
        organization=organization,
        registration=None,
        acting_user=actor,
        target_license_id=str(license.pk),
    )
    return result.license
