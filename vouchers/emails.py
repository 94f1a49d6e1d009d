"""The one email of a voucher conversion: every license it issued, with the license files."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import formats, translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from licensing.models import License
from licensing.services import (
    LICENSE_FILE_MIMETYPE,
    license_email_audience,
    license_email_recipients,
    license_email_variants,
    license_file_text,
)
from portal.emails import (
    Attachment,
    AttachmentRef,
    AttachmentUnavailable,
    queue_email_variants,
    sender_language,
)
from portal.models import User

from .models import VoucherConversion
from .selectors import conversion_licenses

# More files than this travel as one zip: mail clients list a dozen attachments, not a thousand.
ZIP_THRESHOLD = 10
ZIP_NAME = "licenses.zip"
ZIP_MIMETYPE = "application/zip"
# More licenses than this are not attached at all: the email lists every key and links to the
# result page's zip. A signed license file is about 1.2 KB in the zip (10,000 made 11.5 MB), so
# 5,000 are about 6 MB, 8 MB once encoded for mail: under the 10 MB many company mail servers
# accept, where a 10,000-license email with its zip (16 MB, plus the list) would bounce.
ATTACH_MAX_LICENSES = 5000
# The outbox's name for the zip of a conversion's license files (registered in apps.py).
CONVERSION_FILES = "vouchers.conversion_files"


def files_attached(license_count: int) -> bool:
    """Whether the conversion email of this many licenses carries their files (else a link)."""
    return license_count <= ATTACH_MAX_LICENSES


def license_file_names(licenses: Sequence[License]) -> list[str]:
    """Each license's file name, made unique (two keys may end in the same five characters)."""
    names: list[str] = []
    seen: set[str] = set()
    for license in licenses:
        name = license.file_name
        if name in seen:
            compact = license.key.replace("-", "").lower()
            name = f"{license.version.product.sku.lower()}-{compact}.lic"
        seen.add(name)
        names.append(name)
    return names


def licenses_zip(licenses: Sequence[License]) -> bytes:
    """A zip of freshly signed license files, one per license."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, license in zip(license_file_names(licenses), licenses, strict=True):
            archive.writestr(name, license_file_text(license))
    return buffer.getvalue()


def conversion_files_zip(ref: str) -> bytes:
    """The zip of the conversion email, built when the email is sent (the CONVERSION_FILES
    source): every license the conversion issued, in its order, freshly signed."""
    try:
        conversion = (
            VoucherConversion.objects.select_related("organization", "registration")
            .defer("plan", "codes", "result")
            .get(pk=ref)
        )
    except (VoucherConversion.DoesNotExist, ValidationError, ValueError) as exc:
        raise AttachmentUnavailable(f"Voucher conversion {ref} no longer exists") from exc
    licenses = conversion_licenses(conversion)
    if not licenses:
        raise AttachmentUnavailable(f"Voucher conversion {ref} issued no licenses")
    return licenses_zip(licenses)


def license_attachments(
    conversion: VoucherConversion, licenses: Sequence[License]
) -> list[Attachment | AttachmentRef]:
    """The zip as a reference, built when the email is sent: signing and zipping 10,000 files
    took 1.5 s and writing them to the outbox 0.7 s of the conversion's last transaction.
    Ten files or fewer stay inline: a few KB, milliseconds to sign."""
    if len(licenses) > ZIP_THRESHOLD:
        return [AttachmentRef(ZIP_NAME, CONVERSION_FILES, str(conversion.pk), ZIP_MIMETYPE)]
    return [
        Attachment(name, license_file_text(license).encode(), LICENSE_FILE_MIMETYPE)
        for name, license in zip(license_file_names(licenses), licenses, strict=True)
    ]


@dataclass(frozen=True)
class EmailRow:
    """One license as the conversion email lists it, in the email's language."""

    product: str
    quantity: int
    key: str
    maintenance_start: str
    maintenance_end: str


def email_rows(licenses: Sequence[License]) -> list[EmailRow]:
    """The email's rows, prepared once for both its text and its HTML body.

    A conversion can list 10,000 licenses: the templates then only place strings, instead of
    following license → version → product and formatting two dates per row, twice.
    """
    dates: dict[date, str] = {}

    def short(day: date) -> str:
        if day not in dates:
            dates[day] = formats.date_format(day, "SHORT_DATE_FORMAT")
        return dates[day]

    return [
        EmailRow(
            product=f"{license.version.product.name} {license.version.version}",
            quantity=license.quantity,
            key=license.key,
            maintenance_start=short(license.maintenance_start),
            maintenance_end=short(license.maintenance_end),
        )
        for license in licenses
    ]


def rows_text(rows: Sequence[EmailRow]) -> str:
    """The text body's list: three lines a license, a blank line between licenses.

    Joined here, not by a loop in the template: 10,000 rows were 130,000 template nodes to
    render, the larger part of the email's cost. Labels are the templates' former msgids.
    """
    quantity, key, maintenance = _("Quantity"), _("License key"), _("Maintenance")
    return "".join(
        f"\n{number}. {row.product} · {quantity} {row.quantity}\n"
        f"   {key}: {row.key}\n"
        f"   {maintenance}: {row.maintenance_start} – {row.maintenance_end}\n"
        for number, row in enumerate(rows, start=1)
    )


def rows_html(rows: Sequence[EmailRow]) -> SafeString:
    """The HTML body's table rows, every value escaped (the stdlib escape Django's filter uses)."""
    return mark_safe(  # every interpolated value is escaped
        "".join(
            '<tr style="border-bottom: 1px solid #dee2e6;">'
            f"<td>{escape(row.product)}</td><td>{row.quantity}</td>"
            '<td style="font-family: monospace; letter-spacing: 1px;">'
            f"<strong>{escape(row.key)}</strong></td>"
            f"<td>{escape(row.maintenance_end)}</td></tr>\n"
            for row in rows
        )
    )


class EmailRows:
    """The email's list of licenses in the language each body is rendered in: prepared once per
    language (email_rows), for both its text and its HTML body and every reader of it."""

    def __init__(self, licenses: Sequence[License]) -> None:
        self.licenses = licenses
        self._by_language: dict[str, tuple[str, SafeString]] = {}

    def _rendered(self) -> tuple[str, SafeString]:
        language = translation.get_language() or settings.LANGUAGE_CODE
        if language not in self._by_language:
            rows = email_rows(self.licenses)
            self._by_language[language] = (rows_text(rows), rows_html(rows))
        return self._by_language[language]

    @property
    def text(self) -> str:
        return self._rendered()[0]

    @property
    def html(self) -> SafeString:
        return self._rendered()[1]


def _conversion_parties(conversion: VoucherConversion) -> tuple[User | None, bool]:
    """The person acting in a conversion's email, and whether the owner's administrators are
    copied: licensing's rule, applied to its licenses.

    A conversion stopped because its submitter's access to the organization ended goes to the
    organization (technical contact, administrators), not to the submitter, who may no longer
    see its keys.
    """
    if conversion.stopped.get("reason") == "access_ended":
        return None, True
    return conversion.created_by, False


def conversion_email_recipients(conversion: VoucherConversion, license: License) -> list[str]:
    """Who a conversion's email goes to (the result page lists them)."""
    actor, partner_acting = _conversion_parties(conversion)
    return license_email_recipients(license, actor, partner_acting=partner_acting)


def conversion_email_queue(*, conversion: VoucherConversion, licenses: Sequence[License]) -> None:
    """Queues one email listing every license of the conversion, files attached (up to
    ATTACH_MAX_LICENSES of them; past that, a link to the zip on the result page).

    Its links go only to recipients who can open them, by the license email's rule
    (license_email_audience, from the conversion's first license: all of them share the
    owner, the registration, the partner and who issued them): the owner's members get the
    license list, the result page and the zip; the partner's user who converted gets the
    result page, which its scopes open (the license list needs view-licenses); the others (a
    technical contact who is no member) read where to find the licenses and whom to ask.

    Each recipient reads it in their own language, the submitter in the one it converted in,
    as the license email of the mint. For licenses a channel partner obtained (the licenses
    record it), the customer's side reads who obtained them on its behalf, and the partner's
    user who did reads what it did, for whom.
    """
    language = conversion.language or sender_language()
    actor, partner_acting = _conversion_parties(conversion)
    # One query (none when the submitter is the only recipient), whatever the count. What a
    # partner's submitter opens is read from the delegation its run acts under.
    openers, others, languages = license_email_audience(
        licenses[0], actor, partner_acting=partner_acting
    )
    partner = licenses[0].partner if licenses[0].partner_id is not None else None
    attached = files_attached(len(licenses))
    shown = {
        "conversion": conversion,
        "rows": EmailRows(licenses),
        "license_count": len(licenses),
        "refused_count": len(conversion.refused),
        "zipped": len(licenses) > ZIP_THRESHOLD,
        "zip_name": ZIP_NAME,
        "attached": attached,
        "organization": conversion.organization,
        "partner": partner,
        # Who obtained them, also when the email no longer goes to them (access ended).
        "acting_email": conversion.created_by.email if conversion.created_by is not None else "",
    }
    queue_email_variants(
        template="vouchers_converted",
        variants=license_email_variants(
            openers=openers,
            others=others,
            shown=shown,
            actor_address=actor.email.lower() if actor is not None else "",
            # The partner's user reads what it did, for whom.
            actor_shown={"for_partner": True} if partner is not None else None,
        ),
        attachments=license_attachments(conversion, licenses) if attached else [],
        # The submitter reads the language it converted in (`language`), not its profile's.
        language=language,
        languages=languages,
    )
