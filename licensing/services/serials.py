"""Serial number imports: a CSV of legacy or pre-printed serials becomes new, open serials.

An import only ever creates. A code that already exists is reported and left exactly as it is:
an import that could update rows could reopen a redeemed serial (its status column defaulting to
open) and let a second organization redeem it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import IO, Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.models import User
from portal.services import audit_record

from ..codes import CodeFormatError, canonical_code, canonical_key, is_printed_key
from ..models import ProductVersion, SerialNumber
from .issue import MAX_MAINTENANCE_MONTHS, MAX_QUANTITY, LicensingError

IMPORT_COLUMNS = [
    "code",
    "product",
    "version",
    "kind",
    "quantity",
    "maintenance_months",
    "expires_on",
    "printed_key",
]
MAX_IMPORT_BYTES = 2 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000
# Said by the import and by the admin's serial form alike.
PRINTED_KEY_CHARACTERS = gettext_lazy(
    "Enter the printed license key as it is on the certificate: letters, digits and dashes only."
)


@dataclass
class SerialImportRow:
    """One CSV line: the serial it would create, or why it will not."""

    line: int
    code: str
    product: str = ""
    version: str = ""
    version_id: int | None = None
    kind: str = SerialNumber.Kind.NEW
    quantity: int = 1
    maintenance_months: int = 12
    expires_on: str = ""  # ISO date or empty
    printed_key: str = ""
    error: str = ""
    exists: bool = False

    @property
    def creatable(self) -> bool:
        return not self.error and not self.exists


@dataclass
class SerialImportPreview:
    rows: list[SerialImportRow] = field(default_factory=list)
    error: str = ""

    @property
    def new(self) -> list[SerialImportRow]:
        return [row for row in self.rows if row.creatable]

    @property
    def existing(self) -> list[SerialImportRow]:
        return [row for row in self.rows if row.exists]

    @property
    def refused(self) -> list[SerialImportRow]:
        return [row for row in self.rows if row.error]

    def creatable_data(self) -> list[dict[str, Any]]:
        """The rows to create, as plain data (kept in the session between preview and confirm)."""
        return [asdict(row) for row in self.new]


@dataclass(frozen=True)
class SerialImportResult:
    created: list[str]
    existing: list[str]


def _int(raw: str, default: int) -> int:
    text = raw.strip()
    return int(text) if text else default


def _row(
    line: int, record: dict[str, str], versions: dict[tuple[str, str], int]
) -> SerialImportRow:
    raw_code = record.get("code", "")
    row = SerialImportRow(line=line, code=raw_code.strip()[:64])
    try:
        row.code = canonical_code(raw_code)
    except CodeFormatError as exc:
        row.error = _("“%(code)s” is not a valid serial number (%(reason)s).") % {
            "code": raw_code.strip()[:64],
            "reason": exc.reason,
        }
        return row
    row.product = record.get("product", "").strip()
    row.version = record.get("version", "").strip()
    version_id = versions.get((row.product.upper(), row.version))
    if version_id is None:
        row.error = _("Unknown product version %(product)s %(version)s: create it first.") % {
            "product": row.product,
            "version": row.version,
        }
        return row
    row.version_id = version_id
    status = record.get("status", "").strip().lower()
    if status not in ("", SerialNumber.Status.OPEN):
        row.error = _("Imports create open serial numbers only: leave the status column empty.")
        return row
    kind = record.get("kind", "").strip().lower() or SerialNumber.Kind.NEW
    if kind not in SerialNumber.Kind.values:
        row.error = _("Kind must be one of: new, upgrade, renewal.")
        return row
    row.kind = kind
    try:
        row.quantity = _int(record.get("quantity", ""), 1)
        row.maintenance_months = _int(record.get("maintenance_months", ""), 12)
    except ValueError:
        row.error = _("Quantity and maintenance months must be whole numbers.")
        return row
    if not 1 <= row.quantity <= MAX_QUANTITY:
        row.error = _("Quantity must be from 1 to %(max)s.") % {"max": f"{MAX_QUANTITY:,}"}
        return row
    if not 0 <= row.maintenance_months <= MAX_MAINTENANCE_MONTHS:
        row.error = _("Maintenance months must be from 0 to %(max)d.") % {
            "max": MAX_MAINTENANCE_MONTHS
        }
        return row
    expires = record.get("expires_on", "").strip()
    if expires:
        try:
            row.expires_on = date.fromisoformat(expires).isoformat()
        except ValueError:
            row.error = _("“%(value)s” is not a date: write it YYYY-MM-DD.") % {
                "value": expires[:40]
            }
            return row
    printed = record.get("printed_key", "").strip()
    if printed:
        row.printed_key = canonical_key(printed)
        if len(row.printed_key) > 64:
            row.error = _("The printed license key is longer than 64 characters.")
        elif not is_printed_key(row.printed_key):
            row.error = str(PRINTED_KEY_CHARACTERS)
    return row


def serials_import_preview(*, upload: IO[bytes]) -> SerialImportPreview:
    """Reads an import CSV and says, row by row, what it would create. Writes nothing.

    Reads no more of `upload` than MAX_IMPORT_BYTES and one byte to see it is larger: a file of
    a gigabyte is refused without being held in memory.
    """
    content = upload.read(MAX_IMPORT_BYTES + 1)
    if len(content) > MAX_IMPORT_BYTES:
        return SerialImportPreview(error=_("The file is larger than 2 MB: split it."))
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return SerialImportPreview(
            error=_("The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.")
        )
    if "\x00" in text:
        return SerialImportPreview(error=_("The file is not a CSV file."))
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
        records: list[tuple[int, dict[str, str]]] = []
        for line, record in enumerate(reader, start=2):
            if len(records) >= MAX_IMPORT_ROWS:
                return SerialImportPreview(
                    error=_("Import at most %(max)s serial numbers at a time.")
                    % {"max": f"{MAX_IMPORT_ROWS:,}"}
                )
            clean = {(k or "").strip().lower(): (v or "") for k, v in record.items() if k}
            if any(value.strip() for value in clean.values()):
                records.append((line, clean))
    except csv.Error as exc:
        return SerialImportPreview(
            error=_("The file is not a valid CSV: %(error)s.") % {"error": exc}
        )
    missing = [name for name in ("code", "product", "version") if name not in header]
    if missing:
        return SerialImportPreview(
            error=_("The CSV needs a header row with the columns: %(columns)s.")
            % {"columns": ", ".join(IMPORT_COLUMNS)}
        )
    versions = {
        (sku.upper(), number): pk
        for pk, sku, number in ProductVersion.objects.values_list("pk", "product__sku", "version")
    }
    rows = [_row(line, record, versions) for line, record in records]
    seen: set[str] = set()
    for row in rows:
        if row.error:
            continue
        if row.code in seen:
            row.error = _("This serial number appears more than once in the file.")
        seen.add(row.code)
    codes = [row.code for row in rows if not row.error]
    existing = set(SerialNumber.objects.filter(code__in=codes).values_list("code", flat=True))
    for row in rows:
        if not row.error and row.code in existing:
            row.exists = True
    return SerialImportPreview(rows=rows)


@transaction.atomic
def serials_import(
    *, rows: list[dict[str, Any]], reported_existing: list[str], actor: User | None
) -> SerialImportResult:
    """Creates the previewed serials that do not exist yet; existing codes are left untouched.

    `rows` are SerialImportPreview.creatable_data(); `reported_existing` the codes the preview
    already found, which the audit event and the result list with those found now.
    """
    wanted = [SerialImportRow(**row) for row in rows]
    if not wanted and not reported_existing:
        raise LicensingError(_("There is nothing to import."))
    versions = ProductVersion.objects.in_bulk({row.version_id for row in wanted})
    existing = set(
        SerialNumber.objects.filter(code__in=[row.code for row in wanted]).values_list(
            "code", flat=True
        )
    )
    new = [row for row in wanted if row.code not in existing and row.version_id in versions]
    try:
        # A plain INSERT, never an upsert: a code created meanwhile fails the unique constraint
        # and the whole import rolls back instead of touching that row.
        with transaction.atomic():
            SerialNumber.objects.bulk_create(
                [
                    SerialNumber(
                        code=row.code,
                        version=versions[row.version_id],
                        kind=row.kind,
                        quantity=row.quantity,
                        maintenance_months=row.maintenance_months,
                        expires_on=date.fromisoformat(row.expires_on) if row.expires_on else None,
                        printed_key=row.printed_key,
                    )
                    for row in new
                ],
                batch_size=1000,
            )
    except IntegrityError as exc:
        raise LicensingError(
            _("Some of these serial numbers were created meanwhile. Upload the file again.")
        ) from exc
    result = SerialImportResult(
        created=[row.code for row in new],
        existing=sorted(existing | set(reported_existing)),
    )
    audit_record(
        action="serials.imported",
        actor=actor,
        details={"created": result.created, "existing": result.existing},
    )
    return result


@transaction.atomic
def serials_void(*, serial_ids: list[int], actor: User | None) -> list[str]:
    """Voids the open serials among `serial_ids`; redeemed and void ones are left as they are.

    A conditional UPDATE (status still open) decides, so a serial redeemed meanwhile is never
    voided. Returns the codes voided, which the audit event lists.
    """
    open_serials = SerialNumber.objects.select_for_update().filter(
        pk__in=serial_ids, status=SerialNumber.Status.OPEN
    )
    codes = list(open_serials.values_list("code", flat=True))
    SerialNumber.objects.filter(code__in=codes, status=SerialNumber.Status.OPEN).update(
        status=SerialNumber.Status.VOID
    )
    if codes:
        audit_record(action="serials.voided", actor=actor, details={"codes": codes})
    return codes


def serials_exported(*, count: int, open_count: int, query: str, actor: User | None) -> None:
    """Audits an export of serial numbers: an open code is a license for whoever types it, so
    who took how many, and with which change-list filters (`query`), stays on record."""
    audit_record(
        action="serials.exported",
        actor=actor,
        details={"count": count, "open": open_count, "query": query[:500]},
    )


@transaction.atomic
def serial_add(*, serial: SerialNumber, actor: User | None) -> SerialNumber:
    """Saves a serial number staff typed in admin's add form; audited as generated ones are."""
    serial.save(force_insert=True)
    audit_record(
        action="serials.created",
        actor=actor,
        obj=serial,
        details={
            "product": serial.version.product.sku,
            "version": serial.version.version,
            "kind": serial.kind,
            "count": 1,
            "quantity": serial.quantity,
            "maintenance_months": serial.maintenance_months,
            "codes": [serial.code],
            "reason": "staff",
        },
    )
    return serial


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


@transaction.atomic
def serial_change(
    *, serial: SerialNumber, fields: Sequence[str], actor: User | None
) -> SerialNumber:
    """Saves the `fields` staff changed on a serial number in admin, audited before and after.

    Only those columns are written, and only while the serial is open: once redeemed or void
    it is a record (admin shows every field read-only), and a full save would write back the
    status the admin page read.
    """
    locked = SerialNumber.objects.select_for_update().get(pk=serial.pk)
    before = {name: _audit_value(getattr(locked, name)) for name in fields}
    after = {name: _audit_value(getattr(serial, name)) for name in fields}
    if before == after:
        return serial
    # Redeemed, it is the record of the license it issued (its months, its printed key); void,
    # it is withdrawn. Checked under the lock: redeemed between the page and the save, too.
    if locked.status != SerialNumber.Status.OPEN:
        raise LicensingError(
            _(
                "This serial number was redeemed or voided meanwhile, and can no longer be "
                "changed. Reload the page to see it as it is now."
            )
        )
    serial.save(update_fields=list(fields))
    audit_record(
        action="serial.changed",
        actor=actor,
        obj=serial,
        details={"code": serial.code, "from": before, "to": after, "reason": "staff"},
    )
    return serial
