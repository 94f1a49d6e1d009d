from __future__ import annotations

import csv
import io
import re
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from licensing.codes import CODE_BODY_LENGTH, CodeFormatError, canonical_code, compact
from licensing.forms import CODE_INPUT_ATTRS
from portal.http import PortalRequest
from portal.models import Organization
from portal.ratelimit import CodeGuard

from .selectors import CodeCheck, Reason, vouchers_check

MAX_CODES = 1000
# Input is measured before it is parsed. Typed or pasted: 1,000 codes take under 32,000
# characters in any layout people use; twice that leaves room for stray spaces and notes.
MAX_TEXT_CHARS = 64 * 1024
MAX_FILE_BYTES = 1024 * 1024
# A spreadsheet of 1,000 codes with up to 19 other columns; counted before the CSV is read.
MAX_CSV_CELLS = 20 * MAX_CODES
# Splitting stops here: past it the list is refused anyway, so nothing more is worth reading.
MAX_ENTRIES = 2 * MAX_CODES
# csv.Sniffer's regular expressions are quadratic in their sample: a small one is enough to
# tell commas from semicolons and tabs.
SNIFF_CHARS = 1024
CODE_LENGTH = CODE_BODY_LENGTH + 1
# Column headers a spreadsheet of codes may use (English and Portuguese).
CODE_HEADERS = {
    "code",
    "codes",
    "voucher",
    "vouchers",
    "voucher code",
    "voucher codes",
    "voucher_code",
    "código",
    "codigo",
    "código do voucher",
    "codigo do voucher",
}
_PIECES = re.compile(r"[\r\n,;\t]+")
_CODE_LIKE = re.compile(r"^[0-9A-Za-z]{20,30}$")

NOT_CSV_MESSAGE = _(
    "This file is not a CSV file. Save the list of voucher codes as CSV (comma-separated "
    "values, one code per line) and upload that file."
)


def split_codes(text: str, *, limit: int | None = None) -> list[str]:
    """Codes as typed or pasted: one per line, or separated by commas, semicolons or spaces.

    A code may itself be typed with spaces between its groups ("7K3QD M2XJ9 …"): consecutive
    short pieces are joined until they make up the length of one code. Linear in the text: the
    length of the pieces waiting to be joined is kept as a running count, never recomputed.
    Stops after `limit` entries.
    """
    entries: list[str] = []
    for piece in _PIECES.split(text or ""):
        buffer: list[str] = []
        buffered = 0  # characters of `buffer` that count towards a code (separators do not)
        for token in piece.split():
            size = len(compact(token))
            if size >= CODE_LENGTH:
                if buffered:
                    entries.append(" ".join(buffer))
                buffer, buffered = [], 0
                entries.append(token)
            else:
                buffer.append(token)
                buffered += size
                if buffered >= CODE_LENGTH:
                    entries.append(" ".join(buffer))
                    buffer, buffered = [], 0
            if limit is not None and len(entries) >= limit:
                return entries[:limit]
        if buffered:
            entries.append(" ".join(buffer))
        if limit is not None and len(entries) >= limit:
            return entries[:limit]
    return entries


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise forms.ValidationError(NOT_CSV_MESSAGE, code="not_csv")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t") + text.count("\ufffd")
    if controls > len(text) // 100:  # binary, not a spreadsheet saved in a legacy encoding
        raise forms.ValidationError(NOT_CSV_MESSAGE, code="not_csv")
    return text


def codes_from_csv(upload: UploadedFile) -> list[str]:
    """The codes in an uploaded CSV: the column headed "code" (or "voucher"…) if there is one;
    otherwise every cell of a one-column file, or the cells that look like codes."""
    if (upload.size or 0) > MAX_FILE_BYTES:
        raise forms.ValidationError(
            _("The file is larger than 1 MB. Upload at most 1,000 codes at a time."),
            code="too_large",
        )
    text = _decode(upload.read(MAX_FILE_BYTES + 1))
    if 1 + sum(text.count(separator) for separator in "\n,;\t") > MAX_CSV_CELLS:
        raise forms.ValidationError(
            _(
                "This file has too many cells for 1,000 voucher codes. Upload a CSV file with "
                "one code per line, at most 1,000 at a time."
            ),
            code="too_many_cells",
        )
    try:
        try:
            dialect: Any = csv.Sniffer().sniff(text[:SNIFF_CHARS], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as exc:
        raise forms.ValidationError(NOT_CSV_MESSAGE, code="not_csv") from exc
    rows = [row for row in rows if any(row)]
    if not rows:
        raise forms.ValidationError(_("The file is empty."), code="empty_file")
    header = [cell.lower().strip('"') for cell in rows[0]]
    column = next((i for i, name in enumerate(header) if name in CODE_HEADERS), None)
    if column is not None:
        cells = [row[column] for row in rows[1:] if len(row) > column]
    elif max(len(row) for row in rows) == 1:
        cells = [row[0] for row in rows]
    else:
        cells = [cell for row in rows for cell in row if _CODE_LIKE.match(compact(cell))]
    entries: list[str] = []
    for cell in cells:
        entries += split_codes(cell, limit=MAX_ENTRIES - len(entries))
        if len(entries) >= MAX_ENTRIES:
            break
    if not any(_CODE_LIKE.match(compact(entry)) for entry in entries):
        raise forms.ValidationError(
            _(
                "We found no voucher codes in this file. Upload a CSV file with one code per "
                "line, or a column headed “code”."
            ),
            code="no_codes",
        )
    return entries


def unique_entries(entries: list[str]) -> list[str]:
    """Entries in order, each code once however it was typed (case, dashes, spaces)."""
    return split_duplicates(entries)[0]


def split_duplicates(entries: list[str]) -> tuple[list[str], list[str]]:
    """(each code once, in order; the codes that were entered more than once, once each)."""
    seen: dict[str, int] = {}
    unique: list[str] = []
    repeated: list[str] = []
    for raw in entries:
        entry = " ".join(raw.split())
        if not entry:
            continue
        try:
            key = canonical_code(entry)
        except CodeFormatError:
            key = compact(entry)
        if key not in seen:
            seen[key] = len(unique)
            unique.append(entry)
        elif unique[seen[key]] not in repeated:
            repeated.append(unique[seen[key]])
    return unique, repeated


class VoucherCodesForm(forms.Form):
    """Step 1: the codes, typed, pasted or uploaded. Checking them counts the failed ones."""

    codes = forms.CharField(
        label=_("Voucher codes"),
        required=False,
        strip=True,
        # Checked before anything splits the text (Field validation runs before clean()).
        max_length=MAX_TEXT_CHARS,
        error_messages={
            "max_length": _(
                "Paste at most 64 KB of text (about 1,000 codes) at a time: split the list and "
                "submit the rest afterwards, or upload it as a CSV file."
            )
        },
        help_text=_(
            "One code per line, or separated by commas or spaces, up to 1,000 at a time. "
            "Upper or lower case, with or without dashes."
        ),
        widget=forms.Textarea(attrs={**CODE_INPUT_ATTRS, "rows": 6, "class": "font-monospace"}),
    )
    file = forms.FileField(
        label=_("Or upload a CSV file"),
        required=False,
        help_text=_("One code per line, or a column headed “code”. At most 1 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
    )

    def __init__(
        self, *args: Any, request: PortalRequest, organization: Organization, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.actor = request.user
        self.guard = CodeGuard(request, organization=organization, action="vouchers.rate_limited")
        self.entries: list[str] = []
        # Codes pasted more than once: checked and converted once, and the preview says so.
        self.duplicates: list[str] = []
        self.checks: list[CodeCheck] = []
        self.unchecked: list[str] = []
        self.file_entries: list[str] = []
        self.minutes_left = 0

    def clean_file(self) -> UploadedFile | None:
        upload = self.cleaned_data.get("file")
        if upload:
            self.file_entries = codes_from_csv(upload)
        return upload

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        typed = split_codes(cleaned.get("codes") or "", limit=MAX_ENTRIES)
        if len(typed) + len(self.file_entries) >= MAX_ENTRIES:
            raise forms.ValidationError(
                _(
                    "You entered more than %(limit)s codes. Convert at most %(max)s at a time: "
                    "split the list and submit the rest afterwards."
                ),
                code="too_many",
                params={
                    "limit": number_format(MAX_ENTRIES, force_grouping=True),
                    "max": number_format(MAX_CODES, force_grouping=True),
                },
            )
        entries, duplicates = split_duplicates(typed + self.file_entries)
        if not entries:
            raise forms.ValidationError(
                _("Enter at least one voucher code, or upload a CSV file of them."), code="empty"
            )
        if len(entries) > MAX_CODES:
            raise forms.ValidationError(
                ngettext(
                    "You entered %(count)s code. Convert at most %(max)s at a time.",
                    "You entered %(count)s codes. Convert at most %(max)s at a time: split the "
                    "list and submit the rest afterwards.",
                    len(entries),
                )
                % {
                    "count": number_format(len(entries), force_grouping=True),
                    "max": number_format(MAX_CODES, force_grouping=True),
                },
                code="too_many",
            )
        self.guard.check()
        self.entries = entries
        self.duplicates = duplicates
        self.checks, self.unchecked = self._check_within_budget(entries)
        return cleaned

    def _check_within_budget(self, entries: list[str]) -> tuple[list[CodeCheck], list[str]]:
        """Checks the codes; each refused one spends one failed attempt of the shared budget.

        Once the budget is spent, the codes after that point are not revealed ("not checked"),
        so one big submission cannot probe more codes than the same number of serial attempts.
        Typos are still reported: the check character gives them away without any lookup.
        """
        checks = vouchers_check(
            entries=entries,
            organization=self.organization,
            actor=self.actor,
            today=timezone.localdate(),
        )
        shown: list[CodeCheck] = []
        unchecked: list[str] = []
        exhausted = False
        for check in checks:
            if exhausted and check.reason not in Reason.OFFLINE:
                unchecked.append(check.entry)
                shown.append(not_checked(check.entry, self.minutes_left))
                continue
            shown.append(check)
            if check.counts_as_failure and not exhausted:
                budget = self.guard.failed()
                if budget.exhausted:
                    exhausted = True
                    self.minutes_left = budget.minutes_left
        return shown, unchecked


def not_checked(entry: str, minutes: int) -> CodeCheck:
    return CodeCheck(entry, "", Reason.NOT_CHECKED, None, {"minutes": max(1, minutes)})


class PreviewForm(forms.Form):
    combine = forms.BooleanField(
        label=_("Combine vouchers of the same product and version into one license"),
        required=False,
        initial=True,
        help_text=_(
            "The license's quantity is the sum of the vouchers'. Untick to get one license "
            "per voucher."
        ),
    )


class ConfirmForm(forms.Form):
    """What is confirmed comes from the server; the token makes a second submit find the first."""

    token = forms.UUIDField(widget=forms.HiddenInput)
