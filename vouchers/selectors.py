"""Reads of the Voucher center: code checks (the preview rules), conversions and OEM batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from licensing.codes import CodeFormatError, canonical_code, generate_code
from licensing.models import License, ProductVersion, SerialNumber
from licensing.selectors import keys_readable
from licensing.templatetags.licensing_tags import mask_key
from portal.formats import short_date
from portal.models import Organization, User
from portal.policy import Action, organization_access
from portal.ratelimit import support_contact

from .models import Voucher, VoucherBatch, VoucherConversion, VoucherConversionLicense

# Statements carry at most this many ids: portable across databases' parameter limits, and
# still one statement per thousands of vouchers, never one per voucher.
SQL_SLICE = 2000
GENERATED_LENGTH = len(generate_code())  # 25 characters in five dash-separated groups

T = TypeVar("T")


def slices(items: Sequence[T], size: int = SQL_SLICE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Reason:
    """Why a code cannot be converted; stored in results, turned into words when shown."""

    CHECK = "check"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    SERIAL = "serial"
    EXPIRED = "expired"
    VOID = "void"
    REDEEMED = "redeemed"
    REDEEMED_BY_YOU = "redeemed_by_you"
    NODE_LOCKED = "node_locked"
    NOT_CHECKED = "not_checked"
    STOPPED = "stopped"
    ACCESS_ENDED = "access_ended"
    TERMS = "terms"

    # A failed attempt in the shared budget, as a mistyped or unknown serial number is. A code the
    # organization itself already converted, or that is real but node-locked, is not a guess.
    COUNTED = frozenset({CHECK, MALFORMED, UNKNOWN, SERIAL, EXPIRED, VOID, REDEEMED})
    # Decided from the characters alone, with no lookup: safe to report past the budget.
    OFFLINE = frozenset({CHECK, MALFORMED})


def reason_message(reason: str, params: dict[str, Any] | None = None) -> str:
    """The sentence shown (and emailed) for a refused code, in the active language."""
    params = params or {}
    if reason == Reason.NOT_CHECKED:
        return _not_checked_message(params.get("minutes"))
    messages = {
        Reason.CHECK: _(
            "Not valid: check the code for typos (0 and O, 1 and I, 8 and B look alike)."
        ),
        Reason.MALFORMED: _(
            "This is not a voucher code: voucher codes have 25 letters and digits, "
            "for example 7K3QD-M2XJ9-…"
        ),
        Reason.UNKNOWN: _(
            "We could not find this voucher code. Check it against your voucher; if it is "
            "right, contact customer care."
        ),
        Reason.SERIAL: _(
            "This is a serial number, not a voucher code: redeem it with Get a license key."
        ),
        Reason.EXPIRED: _("This voucher expired on %(date)s and can no longer be converted."),
        Reason.VOID: _(
            "This voucher was cancelled and cannot be converted. Contact the partner you "
            "received it from."
        ),
        Reason.REDEEMED: _("This voucher was already converted into a license."),
        Reason.REDEEMED_BY_YOU: _(
            "Your organization already converted this voucher: it is license %(key)s."
        ),
        Reason.NODE_LOCKED: _(
            "%(product)s is licensed per machine and cannot be converted here. Contact customer "
            "care."
        ),
        Reason.STOPPED: _(
            "Not converted: the conversion stopped before this code. Submit it again, or "
            "contact customer care."
        ),
        Reason.TERMS: _(
            "This voucher cannot be converted online: its terms are out of range. Contact "
            "customer care."
        ),
        Reason.ACCESS_ENDED: _(
            "Not converted: the conversion stopped when its submitter's access to the "
            "organization ended. This voucher was not used: it can still be converted."
        ),
    }
    message = messages.get(reason, _("This voucher cannot be converted."))
    if "date" in params:  # stored as ISO (the conversion keeps it as JSON): shown in the language
        params = {**params, "date": short_date(params["date"])}
    try:
        return message % params if "%(" in message else message
    except (KeyError, TypeError, ValueError):
        return message


def _not_checked_message(minutes: Any) -> SafeString:
    """A code the used-up budget kept from being looked up: when to try again, and whom to ask,
    as the portal's code_limit_message says it."""
    try:
        count = max(1, int(minutes))
    except (TypeError, ValueError):
        count = 1
    wait = ngettext(
        "Not checked: too many codes could not be used. For your security, try again in "
        "%(minutes)d minute.",
        "Not checked: too many codes could not be used. For your security, try again in "
        "%(minutes)d minutes.",
        count,
    ) % {"minutes": count}
    return format_html("{} {}", wait, support_contact())


@dataclass(frozen=True)
class CodeCheck:
    """One submitted code: the voucher it names and whether it can be converted now."""

    entry: str
    code: str = ""
    reason: str = ""
    voucher: Voucher | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return not self.reason and self.voucher is not None

    @property
    def counts_as_failure(self) -> bool:
        return self.reason in Reason.COUNTED

    @property
    def message(self) -> str:
        return reason_message(self.reason, self.params) if self.reason else ""

    @property
    def shown_code(self) -> str:
        return self.code or self.entry

    def refusal(self) -> dict[str, Any]:
        return {"code": self.shown_code, "reason": self.reason, "params": self.params}


def voucher_check(
    voucher: Voucher, *, organization: Organization, today: date, entry: str = ""
) -> CodeCheck:
    """Whether the organization can convert this voucher today, and if not, why."""
    entry = entry or voucher.code
    batch = voucher.batch
    code = voucher.code
    if voucher.status == Voucher.Status.REDEEMED:
        if voucher.redeemed_by_id == organization.pk and voucher.license is not None:
            return CodeCheck(
                entry, code, Reason.REDEEMED_BY_YOU, voucher, {"key": voucher.license.key}
            )
        return CodeCheck(entry, code, Reason.REDEEMED, voucher)
    if voucher.status == Voucher.Status.VOID or batch.voided_at is not None:
        return CodeCheck(entry, code, Reason.VOID, voucher)
    if batch.is_expired(today=today):
        assert batch.expires_on is not None
        return CodeCheck(
            entry, code, Reason.EXPIRED, voucher, {"date": batch.expires_on.isoformat()}
        )
    if batch.version.product.node_locked:
        return CodeCheck(
            entry, code, Reason.NODE_LOCKED, voucher, {"product": batch.version.product.name}
        )
    if not batch.terms_in_range():
        # Stored before admin enforced the limits: its license's dates would not even compute.
        return CodeCheck(entry, code, Reason.TERMS, voucher)
    return CodeCheck(entry, code, "", voucher)


def _is_generated(code: str) -> bool:
    return len(code) == GENERATED_LENGTH and code.count("-") == GENERATED_LENGTH // 6


def vouchers_check(
    *, entries: Iterable[str], organization: Organization, actor: User | None, today: date
) -> list[CodeCheck]:
    """Checks every code as typed, in order, with one lookup for all of them (the preview rules).

    Duplicates (the same code typed twice, in any form) are checked once. The key of a license
    a code already became is shown whole only to an actor who may read it (checks_masked).
    """
    checks: list[CodeCheck | tuple[str, str]] = []  # a check, or (entry, code) to look up
    seen: set[str] = set()
    for raw in entries:
        entry = " ".join(str(raw).split())
        if not entry:
            continue
        try:
            code = canonical_code(entry)
        except CodeFormatError as exc:
            reason = Reason.CHECK if exc.reason == "check" else Reason.MALFORMED
            if entry.upper() not in seen:
                seen.add(entry.upper())
                checks.append(CodeCheck(entry, "", reason))
            continue
        if code not in seen:
            seen.add(code)
            checks.append((entry, code))

    # Voucher codes are all generated; a code in another format can only be a legacy serial.
    codes = [item[1] for item in checks if isinstance(item, tuple) and _is_generated(item[1])]
    vouchers: dict[str, Voucher] = {}
    for part in slices(codes):
        for voucher in Voucher.objects.select_related("batch__version__product", "license").filter(
            code__in=part
        ):
            vouchers[voucher.code] = voucher
    serials: set[str] = set()
    unknown = [item[1] for item in checks if isinstance(item, tuple) and item[1] not in vouchers]
    for part in slices(unknown):
        serials.update(
            SerialNumber.objects.filter(code__in=part, status=SerialNumber.Status.OPEN).values_list(
                "code", flat=True
            )
        )
    result: list[CodeCheck] = []
    for item in checks:
        if isinstance(item, CodeCheck):
            result.append(item)
            continue
        entry, code = item
        found = vouchers.get(code)
        if found is not None:
            result.append(voucher_check(found, organization=organization, today=today, entry=entry))
        elif code in serials:
            result.append(CodeCheck(entry, code, Reason.SERIAL))
        elif _is_generated(code):
            result.append(CodeCheck(entry, code, Reason.UNKNOWN))
        else:
            result.append(CodeCheck(entry, "", Reason.MALFORMED))
    return checks_masked(result, actor=actor, organization=organization)


def refusal_params_shown(
    refusals: Sequence[tuple[str, dict[str, Any]]],
    *,
    actor: User | None,
    organization: Organization,
) -> list[dict[str, Any]]:
    """The params of each refusal (reason, params), the key a code of the organization's already
    became masked (mask_key) where the actor may not read it whole, as Get a key masks a
    serial's: a conversion stores and shows the key the preview showed."""
    keys = [params["key"] for reason, params in refusals if _names_key(reason, params)]
    readable = keys_readable(actor=actor, organization=organization, keys=keys)
    return [
        {**params, "key": mask_key(params["key"])}
        if _names_key(reason, params) and params["key"] not in readable
        else params
        for reason, params in refusals
    ]


def _names_key(reason: str, params: dict[str, Any]) -> bool:
    return reason == Reason.REDEEMED_BY_YOU and isinstance(params.get("key"), str)


def checks_masked(
    checks: list[CodeCheck], *, actor: User | None, organization: Organization
) -> list[CodeCheck]:
    """The checks, with the keys the actor may not read masked (refusal_params_shown)."""
    shown = refusal_params_shown(
        [(check.reason, check.params) for check in checks],
        actor=actor,
        organization=organization,
    )
    return [
        check if params is check.params else replace(check, params=params)
        for check, params in zip(checks, shown, strict=True)
    ]


@dataclass
class LicenseGroup:
    """Vouchers that become one license: same product version and maintenance term."""

    version: ProductVersion
    maintenance_months: int
    checks: list[CodeCheck] = field(default_factory=list)

    @property
    def quantity(self) -> int:
        return sum(c.voucher.batch.quantity_per_voucher for c in self.checks if c.voucher)

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.checks]


def license_groups(checks: Iterable[CodeCheck], *, combine: bool) -> list[LicenseGroup]:
    """The licenses a conversion would issue: one per voucher, or one per product version and
    maintenance term when combining (vouchers with different terms cannot share an end date)."""
    groups: dict[object, LicenseGroup] = {}
    for check in checks:
        if not check.usable or check.voucher is None:
            continue
        batch = check.voucher.batch
        key: object = (batch.version_id, batch.maintenance_months) if combine else check.voucher.pk
        if key not in groups:
            groups[key] = LicenseGroup(
                version=batch.version, maintenance_months=batch.maintenance_months
            )
        groups[key].checks.append(check)
    return list(groups.values())


# ---------------------------------------------------------------------------------------------
# Conversions


def conversion_for(*, actor: User, organization: Organization, pk: UUID | str) -> VoucherConversion:
    """A conversion of the acting organization, or 404 (never a hint that it exists elsewhere).

    Its page lists every key it issued: all of the organization's conversions for an actor who
    may view its licenses, only the actor's own for a partner that may only obtain keys.
    """
    access = organization_access(actor=actor, organization=organization)
    if access is None:
        raise Http404("No such conversion.")
    conversions = VoucherConversion.objects.filter(organization=organization)
    if not access.allows(Action.VIEW_LICENSES):
        if not access.allows(Action.VIEW_OWN_RESULTS):
            raise Http404("No such conversion.")
        conversions = conversions.filter(created_by=actor)
    try:
        # The plan and the submitted codes can be large and no page needs them.
        return conversions.defer("plan", "codes").get(pk=pk)
    except (VoucherConversion.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404("No such conversion.") from exc


def conversion_licenses(conversion: VoucherConversion) -> list[License]:
    """The licenses a conversion issued, in the order it issued them (two queries)."""
    licenses = list(
        License.objects.filter(voucher_conversion_entries__conversion=conversion).order_by(
            "voucher_conversion_entries__position"
        )
    )
    # All of them belong to the conversion's organization and registration, and to a handful
    # of product versions: share those objects rather than joining and building them again for
    # each of thousands of licenses.
    versions = ProductVersion.objects.select_related("product").in_bulk(
        {license.version_id for license in licenses}
    )
    for license in licenses:
        license.version = versions[license.version_id]
        if license.owner_id == conversion.organization_id:
            license.owner = conversion.organization
        if conversion.registration is not None and (
            license.registration_id == conversion.registration_id
        ):
            license.registration = conversion.registration
    return licenses


def conversion_entries(conversion: VoucherConversion) -> QuerySet[VoucherConversionLicense]:
    """A conversion's licenses as its rows, in order, product and version joined: to page."""
    return (
        VoucherConversionLicense.objects.filter(conversion=conversion)
        .select_related("license__version__product")
        .order_by("position")
    )


def license_codes(license_ids: Sequence[UUID]) -> dict[UUID, list[str]]:
    """The codes of the vouchers each of these licenses consumed (one query per 2,000)."""
    codes: dict[UUID, list[str]] = {pk: [] for pk in license_ids}
    for part in slices(license_ids):
        for license_id, code in (
            Voucher.objects.filter(license_id__in=part)
            .order_by("pk")
            .values_list("license_id", "code")
        ):
            codes[license_id].append(code)
    return codes


def conversion_converted_codes(conversion: VoucherConversion) -> list[str]:
    """The codes a conversion converted (one query)."""
    return list(
        Voucher.objects.filter(
            license__voucher_conversion_entries__conversion=conversion
        ).values_list("code", flat=True)
    )


# ---------------------------------------------------------------------------------------------
# OEM batches


def _batch_counts(queryset: QuerySet[VoucherBatch], *, today: date) -> QuerySet[VoucherBatch]:
    expired = Q(expires_on__isnull=False, expires_on__lt=today)
    is_open = Q(vouchers__status=Voucher.Status.OPEN)
    return queryset.annotate(
        total_count=Count("vouchers"),
        redeemed_count=Count("vouchers", filter=Q(vouchers__status=Voucher.Status.REDEEMED)),
        void_count=Count("vouchers", filter=Q(vouchers__status=Voucher.Status.VOID)),
        expired_count=Count("vouchers", filter=is_open & expired),
        open_count=Count("vouchers", filter=is_open & ~expired),
    )


def batches_visible_to(
    *, actor: User, organization: Organization, today: date
) -> QuerySet[VoucherBatch]:
    """An OEM partner's voucher batches with their counts, for the partner's own members.

    Never through a delegation: the batches and the customers that converted them are the
    OEM's own, not data a partner acting for it may see.
    """
    access = organization_access(actor=actor, organization=organization)
    if organization.kind != Organization.Kind.PARTNER or access is None or not access.is_member:
        return VoucherBatch.objects.none()
    return _batch_counts(
        VoucherBatch.objects.filter(oem=organization).select_related("version__product"),
        today=today,
    ).order_by("-created_at", "-pk")


def batch_for(*, actor: User, organization: Organization, pk: int, today: date) -> VoucherBatch:
    """One of the partner's batches with its counts, or 404."""
    try:
        return batches_visible_to(actor=actor, organization=organization, today=today).get(pk=pk)
    except VoucherBatch.DoesNotExist as exc:
        raise Http404("No such batch.") from exc


def batch_redeemers(*, batch: VoucherBatch) -> list[dict[str, Any]]:
    """Which organizations converted a batch's vouchers: names and counts, nothing else."""
    return list(
        Voucher.objects.filter(batch=batch, status=Voucher.Status.REDEEMED)
        .values("redeemed_by_id", "redeemed_by__name")
        .annotate(vouchers=Count("pk"))
        .order_by("-vouchers", "redeemed_by__name")
    )
