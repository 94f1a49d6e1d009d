"""Writes of the Voucher center: batches, voiding, and converting vouchers into licenses.

A conversion is planned once (which vouchers become which license), then carried out one
transaction per chunk of licenses. Each chunk locks its vouchers, issues the licenses through
licensing.licenses_issue and claims the vouchers with one conditional UPDATE whose row count is
checked, all in the same transaction; the chunk's outcome (its licenses as
VoucherConversionLicense rows, its progress) is written in that transaction too, so a conversion
interrupted at any point resumes exactly where it stopped.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from licensing.codes import generate_code
from licensing.models import (
    MAX_MAINTENANCE_MONTHS,
    MAX_QUANTITY,
    License,
    ProductVersion,
    SerialNumber,
    SupportRegistration,
    add_months,
)
from licensing.services import IssueSource, licenses_issue
from portal.broker import enqueue
from portal.models import Delegation, Organization, User
from portal.policy import Action, may_go_on
from portal.requestcontext import acting_under, current_delegation
from portal.services import audit_record, staff_edit_save
from portal.tasks import merge_search_indexes

from .emails import conversion_email_queue
from .models import Voucher, VoucherBatch, VoucherConversion, VoucherConversionLicense
from .selectors import (
    CodeCheck,
    Reason,
    checks_masked,
    conversion_converted_codes,
    conversion_licenses,
    license_groups,
    slices,
    voucher_check,
    vouchers_check,
)

MAX_BATCH_SIZE = 100_000
# One transaction converts at most this many vouchers (unless one license needs more: a license
# and the vouchers it consumes are never split) and issues at most this many licenses. Small
# enough that progress moves and locks are short (500 licenses: well under a second), large
# enough that overhead stays flat (100 made a 10,000-license conversion 101 transactions of ~9
# statements each).
CHUNK_VOUCHERS = 2000
CHUNK_LICENSES = 500
SOURCE_REF_LENGTH = 100  # License.source_ref


class VoucherError(Exception):
    """An illegal voucher state change; the message tells the user (or staff) what to do."""


# Said by the admin's batch form and by voucher_batch_create alike.
EXPIRED_ON_CREATION = gettext_lazy(
    "Choose a date from today on: the vouchers of a batch that has already expired could never "
    "be converted."
)


def voucher_batch_expiry_refusal(expires_on: date | None, *, today: date) -> str | None:
    """Why a new batch cannot have this redeem-before date, or None. On a batch that exists, an
    earlier date is allowed (staff end a batch early), audited by voucher_batch_staff_change."""
    if expires_on is not None and expires_on < today:
        return str(EXPIRED_ON_CREATION)
    return None


class _ClaimConflict(Exception):
    """A voucher changed between its lock and its claim: roll the chunk back and redo it."""


# ---------------------------------------------------------------------------------------------
# Batches (staff)


def voucher_codes_generate(*, count: int) -> list[str]:
    """`count` new voucher codes, none of them already a voucher or a serial number.

    Checked in bulk: generate all, look the whole set up in both tables, replace the (in
    practice zero) collisions and repeat.
    """
    codes: dict[str, None] = {}
    while len(codes) < count:
        fresh = [c for c in {generate_code() for _ in range(count - len(codes))} if c not in codes]
        taken: set[str] = set()
        for part in slices(fresh):
            taken.update(Voucher.objects.filter(code__in=part).values_list("code", flat=True))
            taken.update(SerialNumber.objects.filter(code__in=part).values_list("code", flat=True))
        codes.update(dict.fromkeys(c for c in fresh if c not in taken))
    return list(codes)


@transaction.atomic
def voucher_batch_create(
    *,
    oem: Organization,
    version: ProductVersion,
    count: int,
    quantity_per_voucher: int = 1,
    maintenance_months: int = 12,
    expires_on: date | None = None,
    label: str = "",
    created_by: User | None = None,
) -> VoucherBatch:
    """Creates a batch of `count` vouchers for an OEM partner."""
    if oem.kind != Organization.Kind.PARTNER:
        raise VoucherError(
            _("%(name)s is not a partner organization: only OEM partners receive vouchers.")
            % {"name": oem.name}
        )
    if not 1 <= count <= MAX_BATCH_SIZE:
        raise VoucherError(_("Create between 1 and 100,000 vouchers at a time."))
    if quantity_per_voucher < 1:
        raise VoucherError(_("A voucher needs a quantity of at least 1."))
    # The limits of a serial, which a voucher becomes the license of (the admin form says so too).
    if quantity_per_voucher > MAX_QUANTITY:
        raise VoucherError(
            _("Quantity must be from 1 to %(max)s.")
            % {"max": number_format(MAX_QUANTITY, force_grouping=True)}
        )
    if not 0 <= maintenance_months <= MAX_MAINTENANCE_MONTHS:
        raise VoucherError(
            _("Maintenance months must be from 0 to %(max)d.") % {"max": MAX_MAINTENANCE_MONTHS}
        )
    if version.product.node_locked:
        raise VoucherError(
            _(
                "%(product)s is node-locked: its licenses need a host ID, which vouchers cannot "
                "carry. Sell it with serial numbers."
            )
            % {"product": version.product.name}
        )
    refusal = voucher_batch_expiry_refusal(expires_on, today=timezone.localdate())
    if refusal:
        raise VoucherError(refusal)
    batch = VoucherBatch.objects.create(
        oem=oem,
        version=version,
        label=label,
        quantity_per_voucher=quantity_per_voucher,
        maintenance_months=maintenance_months,
        expires_on=expires_on,
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )
    Voucher.objects.bulk_create(
        [Voucher(code=code, batch=batch) for code in voucher_codes_generate(count=count)],
        batch_size=1000,
    )
    audit_record(
        action="voucher_batch.created",
        actor=created_by,
        organization=oem,
        obj=batch,
        details={
            "product": version.product.sku,
            "version": version.version,
            "count": count,
            "quantity_per_voucher": quantity_per_voucher,
            "maintenance_months": maintenance_months,
            "expires_on": expires_on.isoformat() if expires_on else None,
        },
    )
    return batch


@transaction.atomic
def voucher_batch_void(*, batch: VoucherBatch, acting_user: User | None) -> int:
    """Voids a batch: its open vouchers can no longer be converted. Returns how many."""
    locked = VoucherBatch.objects.select_for_update().get(pk=batch.pk)
    if locked.voided_at is not None:
        return 0
    locked.voided_at = timezone.now()
    locked.save(update_fields=["voided_at"])
    # Locked in id order, as conversions lock them, so the two wait for each other instead of
    # deadlocking; a voucher a conversion converted meanwhile is no longer open, and stays so.
    open_ids = list(
        Voucher.objects.select_for_update()
        .filter(batch=locked, status=Voucher.Status.OPEN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    count = 0
    for part in slices(open_ids):
        count += Voucher.objects.filter(pk__in=part, status=Voucher.Status.OPEN).update(
            status=Voucher.Status.VOID
        )
    audit_record(
        action="voucher_batch.voided",
        actor=acting_user,
        organization=locked.oem,
        obj=locked,
        details={"vouchers_voided": count},
    )
    batch.voided_at = locked.voided_at
    return count


def voucher_batch_staff_change(
    *, batch: VoucherBatch, fields: Sequence[str], actor: User | None
) -> VoucherBatch:
    """Saves the `fields` staff changed on a batch in admin (its label, its redeem-before
    date: an earlier one expires every open voucher of it), audited before and after."""
    return staff_edit_save(
        edited=batch,
        fields=fields,
        actor=actor,
        action="voucher_batch.changed",
        organization=lambda locked: locked.oem,
    )


def voucher_codes_exported(*, batch_ids: Sequence[int], count: int, actor: User | None) -> None:
    """Audits an export of voucher codes: an open code converts into a license for whoever
    holds it, so who took how many of which batches stays on record."""
    audit_record(
        action="vouchers.exported",
        actor=actor,
        details={"batches": sorted(batch_ids), "count": count},
    )


@transaction.atomic
def vouchers_void(*, voucher_ids: Sequence[int], acting_user: User | None) -> int:
    """Voids the given vouchers that are still open. Returns how many."""
    codes: list[str] = []
    for part in slices(sorted(voucher_ids)):
        ids = list(
            Voucher.objects.select_for_update()
            .filter(pk__in=part, status=Voucher.Status.OPEN)
            .order_by("pk")
            .values_list("pk", "code")
        )
        Voucher.objects.filter(pk__in=[pk for pk, _code in ids]).update(status=Voucher.Status.VOID)
        codes.extend(code for _pk, code in ids)
    if codes:
        audit_record(action="vouchers.voided", actor=acting_user, details={"codes": codes})
    return len(codes)


# ---------------------------------------------------------------------------------------------
# Conversion (customers)


@dataclass(frozen=True)
class ConversionResult:
    """What a conversion did: the licenses it issued and the codes it refused, with reasons."""

    conversion: VoucherConversion
    licenses: list[License]
    refused: list[dict[str, Any]]

    @property
    def converted_codes(self) -> list[str]:
        return conversion_converted_codes(self.conversion)


def voucher_conversion_create(
    *,
    codes: Sequence[str],
    organization: Organization,
    registration: dict[str, str],
    acting_user: User | None,
    combine: bool = True,
    language: str = "",
    conversion_id: UUID | None = None,
    not_checked: Sequence[dict[str, Any]] = (),
) -> tuple[VoucherConversion, bool]:
    """Records a confirmed submission; returns (conversion, created).

    With `conversion_id` (chosen by the wizard), submitting the same confirmation again returns
    the first conversion instead of creating another. `not_checked` are refusals decided before
    the conversion (codes the rate limit kept from being looked up): they are reported, never
    looked up.
    """
    existing = _existing_conversion(conversion_id, organization)
    if existing is not None:
        return existing, False
    codes = [str(code) for code in codes if str(code).strip()]
    if not codes and not not_checked:
        raise VoucherError(_("Enter at least one voucher code."))
    try:
        with transaction.atomic():
            conversion = VoucherConversion.objects.create(
                **({"id": conversion_id} if conversion_id is not None else {}),
                organization=organization,
                created_by=acting_user if acting_user and acting_user.is_authenticated else None,
                delegation=_delegation_for(organization),
                combine=combine,
                language=language,
                codes=codes,
                registration_data=dict(registration),
                total=len(codes) + len(not_checked),
                result={"refused": list(not_checked)},
            )
    except IntegrityError:
        # The same confirmation, submitted twice at the same moment: the other one won.
        existing = _existing_conversion(conversion_id, organization)
        if existing is None:
            raise
        return existing, False
    return conversion, True


def _existing_conversion(
    conversion_id: UUID | None, organization: Organization
) -> VoucherConversion | None:
    if conversion_id is None:
        return None
    existing = VoucherConversion.objects.filter(pk=conversion_id).first()
    if existing is not None and existing.organization_id != organization.pk:
        raise VoucherError(_("This conversion belongs to another organization."))
    return existing


def _delegation_for(organization: Organization) -> Delegation | None:
    """The channel partner's delegation the request acts under for this organization, if any."""
    delegation = current_delegation()
    if delegation is None or delegation.customer_id != organization.pk:
        return None
    return delegation


def voucher_conversion_run(
    *, conversion_id: UUID | str, until: float | None = None, state: _RunState | None = None
) -> VoucherConversion:
    """Runs a conversion to its end, or resumes it; a no-op for a finished one (idempotent).

    With `until` (a time.monotonic() value) it returns after the first committed step past that
    time, unfinished: the caller continues it later, from where it stopped.
    """
    # A conversion a channel partner confirmed for its customer runs under that delegation,
    # whether in the request or in a worker: the audit trail and the licenses say who obtained
    # them, and the customer's administrators get the email.
    delegation_id = (
        VoucherConversion.objects.filter(pk=conversion_id)
        .values_list("delegation_id", flat=True)
        .first()
    )
    delegation = (
        Delegation.objects.select_related("customer", "partner").filter(pk=delegation_id).first()
        if delegation_id is not None
        else None
    )
    with acting_under(delegation or current_delegation()):
        return _conversion_run(conversion_id, until, state or _RunState())


@dataclass
class _RunState:
    """What one run of a conversion reads once and reuses for every chunk."""

    # The plan is fixed once made: read once per run, not decoded again for every chunk.
    plan: list[list[int]] | None = None
    # The product versions licenses are issued for: a handful, whatever the chunk count.
    versions: dict[int, ProductVersion] = field(default_factory=dict)
    # The licenses this run issued, in order, when it ran the conversion from its plan: all of
    # them, so its last step need not read them back. None when it resumed someone else's run.
    issued: list[License] | None = None
    # Every license of the conversion, as its last step had them for the email.
    licenses: list[License] | None = None


def _conversion_run(
    conversion_id: UUID | str, until: float | None, state: _RunState
) -> VoucherConversion:
    conflicts = 0
    while True:
        try:
            conversion, finished = _conversion_step(conversion_id, state)
        except _ClaimConflict:
            conflicts += 1
            if conflicts >= 3:
                raise
            continue
        if finished or (until is not None and time.monotonic() >= until):
            return conversion


def vouchers_convert(
    *,
    codes: Sequence[str],
    organization: Organization,
    registration: dict[str, str],
    acting_user: User | None,
    combine: bool = True,
    language: str = "",
) -> ConversionResult:
    """Converts vouchers into licenses now: every usable code is converted, the rest reported."""
    conversion, _created = voucher_conversion_create(
        codes=codes,
        organization=organization,
        registration=registration,
        acting_user=acting_user,
        combine=combine,
        language=language,
    )
    state = _RunState()
    conversion = voucher_conversion_run(conversion_id=conversion.pk, state=state)
    return ConversionResult(
        conversion=conversion,
        licenses=state.licenses if state.licenses is not None else conversion_licenses(conversion),
        refused=conversion.refused,
    )


@transaction.atomic
def voucher_conversion_fail(*, conversion_id: UUID | str, error: str) -> None:
    """Stops a conversion that cannot go on: what was converted stays, the rest is reported."""
    conversion = VoucherConversion.objects.select_for_update().filter(pk=conversion_id).first()
    if conversion is None or conversion.is_finished:
        return
    licenses = _stop(conversion, reason=Reason.STOPPED, error=error)
    audit_record(
        action="vouchers.conversion_failed",
        actor=conversion.created_by,
        organization=conversion.organization,
        obj=conversion,
        details={"error": error[:500], "licenses": len(licenses)},
    )


def _stop_access_ended(conversion_id: UUID | str) -> VoucherConversion:
    """Stops a conversion whose submitter may no longer obtain keys for the organization.

    The vouchers not converted yet stay open, for the customer to convert; the licenses issued
    before stay, and are emailed to the customer, not to the partner whose access ended.
    """
    conversion = (
        VoucherConversion.objects.select_for_update(of=("self",))
        .select_related("organization", "created_by", "delegation__partner")
        .get(pk=conversion_id)
    )
    delegation = conversion.delegation
    by = delegation.partner.name if delegation is not None else ""
    if not by and conversion.created_by is not None:
        by = conversion.created_by.email
    licenses = _stop(
        conversion,
        reason=Reason.ACCESS_ENDED,
        error=f"Access ended: {by or 'the submitter'} may no longer obtain keys.",
        stopped={"reason": Reason.ACCESS_ENDED, "by": by},
    )
    # The same action as any stopped conversion (its status is the same); the reason tells.
    audit_record(
        action="vouchers.conversion_failed",
        actor=conversion.created_by,
        organization=conversion.organization,
        obj=conversion,
        details={
            "reason": Reason.ACCESS_ENDED,
            "error": conversion.error,
            "licenses": len(licenses),
            "vouchers_converted": conversion.converted,
            "delegation": delegation.pk if delegation is not None else None,
        },
    )
    return conversion


def _stop(
    conversion: VoucherConversion,
    *,
    reason: str,
    error: str,
    stopped: dict[str, Any] | None = None,
) -> list[License]:
    """Ends a locked conversion as stopped: the codes it did not reach are reported with
    `reason`, the licenses it issued are emailed. Returns those licenses."""
    result = conversion.result or {"refused": []}
    done = set(conversion_converted_codes(conversion))
    done.update(item["code"] for item in result.get("refused", []))
    pending_ids = [pk for group in conversion.plan[conversion.next_group :] for pk in group]
    pending_codes: list[str] = []
    for part in slices(pending_ids):
        pending_codes.extend(Voucher.objects.filter(pk__in=part).values_list("code", flat=True))
    if conversion.status == VoucherConversion.Status.PENDING:  # stopped before its plan
        pending_codes = [code for code in conversion.codes if code not in done]
    result.setdefault("refused", []).extend(
        {"code": code, "reason": reason, "params": {}} for code in pending_codes
    )
    if stopped is not None:
        result["stopped"] = stopped
    conversion.result = result
    conversion.status = VoucherConversion.Status.FAILED
    conversion.error = error[:4000]
    conversion.finished_at = timezone.now()
    conversion.processed = conversion.total
    conversion.save()
    licenses = conversion_licenses(conversion)
    if licenses:
        conversion_email_queue(conversion=conversion, licenses=licenses)
    return licenses


@transaction.atomic
def _conversion_step(
    conversion_id: UUID | str, state: _RunState | None = None
) -> tuple[VoucherConversion, bool]:
    """One transaction of a conversion: plan it, convert one chunk, or finish it."""
    state = _RunState() if state is None else state
    # The row lock makes the conversion's steps strictly sequential, so two workers running the
    # same conversion (a redelivered task, the resume job) never process a chunk twice. Its
    # result and its plan are left in the database (read when needed): decoding them for every
    # chunk made a large conversion quadratic.
    conversion = (
        VoucherConversion.objects.select_for_update(of=("self",))
        .select_related("organization", "created_by", "registration")
        .defer("result", "plan", "codes")
        .get(pk=conversion_id)
    )
    if conversion.is_finished:
        return conversion, True
    if conversion.status == VoucherConversion.Status.PENDING:
        if not _may_go_on(conversion):
            return _stop_access_ended(conversion.pk), True
        _plan(conversion)
        state.plan = conversion.plan
        state.issued = []
        return conversion, False
    if state.plan is None:
        state.plan = (
            VoucherConversion.objects.filter(pk=conversion.pk).values_list("plan", flat=True).get()
        )
    plan = state.plan
    if conversion.next_group < len(plan):
        if not _may_go_on(conversion):
            return _stop_access_ended(conversion.pk), True
        issued = _convert_chunk(conversion, plan, state.versions)
        if state.issued is not None:
            state.issued.extend(issued)
        return conversion, False
    state.licenses = _finish(conversion, state.issued)
    return conversion, True


def _may_go_on(conversion: VoucherConversion) -> bool:
    """Whether the person who submitted the conversion may still obtain keys for its
    organization: the check the Voucher center's pages made, made again before every chunk, so
    a customer revoking a partner's delegation (or its obtain-keys scope) midway stops it."""
    if conversion.created_by_id is None and conversion.delegation_id is None:
        return True  # converted by a command or staff: no one whose access could end
    return may_go_on(
        actor=conversion.created_by,
        organization=conversion.organization,
        delegation_id=conversion.delegation_id,
        action=Action.OBTAIN_KEYS,
    )


def _plan(conversion: VoucherConversion) -> None:
    conversion.refresh_from_db(fields=["codes", "result"])
    checks = vouchers_check(
        entries=conversion.codes,
        organization=conversion.organization,
        # The conversion reports what its submitter's preview showed: not the whole key of a
        # license a partner that may only obtain keys did not obtain itself.
        actor=conversion.created_by,
        today=timezone.localdate(),
    )
    groups = license_groups(checks, combine=conversion.combine)
    decided_before = list((conversion.result or {}).get("refused", []))
    refused = decided_before + [check.refusal() for check in checks if not check.usable]
    if groups and conversion.registration is None:
        conversion.registration = SupportRegistration.objects.create(
            organization=conversion.organization, **conversion.registration_data
        )
    conversion.plan = [
        [check.voucher.pk for check in group.checks if check.voucher] for group in groups
    ]
    conversion.next_group = 0
    conversion.total = len(decided_before) + len(checks)
    conversion.processed = len(refused)
    conversion.result = {"refused": refused}
    conversion.status = VoucherConversion.Status.RUNNING
    # Not the submitted codes, read above: writing them back would rewrite all of them.
    conversion.save(
        update_fields=[
            "registration", "plan", "next_group", "total", "processed", "result", "status",
            "updated_at",
        ]
    )  # fmt: skip


def _next_chunk(conversion: VoucherConversion, plan: list[list[int]]) -> list[list[int]]:
    groups: list[list[int]] = []
    vouchers = 0
    for group in plan[conversion.next_group :]:
        if groups and (vouchers + len(group) > CHUNK_VOUCHERS or len(groups) >= CHUNK_LICENSES):
            break
        groups.append(group)
        vouchers += len(group)
    return groups


def _source_ref(codes: list[str]) -> str:
    ref = ", ".join(codes)
    return ref if len(ref) <= SOURCE_REF_LENGTH else f"{codes[0]} +{len(codes) - 1}"


def _convert_chunk(
    conversion: VoucherConversion, plan: list[list[int]], versions: dict[int, ProductVersion]
) -> list[License]:
    groups = _next_chunk(conversion, plan)
    ids = sorted(pk for group in groups for pk in group)
    today = timezone.localdate()
    now = timezone.now()
    organization = conversion.organization

    # Lock what is still convertible, in id order. A concurrent conversion holding some of these
    # rows makes this wait; when it commits, PostgreSQL re-checks the WHERE clause on the new
    # row versions, so a voucher it took is simply not returned here. Ordered locking means two
    # overlapping bulk conversions queue behind each other instead of deadlocking.
    claimable: dict[int, tuple[int, str, int, int, int]] = {}
    for part in slices(ids):
        rows = (
            Voucher.objects.select_for_update(of=("self",))
            .filter(pk__in=part, status=Voucher.Status.OPEN, batch__voided_at__isnull=True)
            .filter(Q(batch__expires_on__isnull=True) | Q(batch__expires_on__gte=today))
            .order_by("pk")
            .values_list(
                "pk",
                "code",
                "batch__quantity_per_voucher",
                "batch__version_id",
                "batch__maintenance_months",
            )
        )
        claimable.update({row[0]: row for row in rows})
    missing = {row[3] for row in claimable.values()} - versions.keys()
    if missing:
        versions.update(ProductVersion.objects.select_related("product").in_bulk(missing))

    license_of: dict[int, UUID] = {}
    lost: list[int] = []
    sources: list[IssueSource] = []
    members_of: list[list[tuple[int, str, int, int, int]]] = []
    positions: list[int] = []
    for position, group in enumerate(groups, start=conversion.next_group):
        members = [claimable[pk] for pk in group if pk in claimable]
        lost.extend(pk for pk in group if pk not in claimable)
        if not members:
            continue
        codes = [row[1] for row in members]
        sources.append(
            IssueSource(
                kind=License.Source.VOUCHER,
                ref=_source_ref(codes),
                version=versions[members[0][3]],
                quantity=sum(row[2] for row in members),
                maintenance_start=today,
                maintenance_end=add_months(today, members[0][4]),
            )
        )
        members_of.append(members)
        positions.append(position)
    assert conversion.registration is not None
    licenses = licenses_issue(
        sources=sources,
        owner=organization,
        registration=conversion.registration,
        acting_user=conversion.created_by,
    )
    for license, members in zip(licenses, members_of, strict=True):
        license_of.update({row[0]: license.pk for row in members})
    # Positioned by the license's group in the plan: unique, in order, and the same whichever
    # run or worker converts the chunk.
    VoucherConversionLicense.objects.bulk_create(
        VoucherConversionLicense(conversion=conversion, position=position, license=license)
        for position, license in zip(positions, licenses, strict=True)
    )

    claimed = _claim(license_of, organization=organization, now=now)
    if claimed != len(license_of):
        # Only possible without row locks (SQLite): never keep a license for a lost voucher.
        raise _ClaimConflict

    checks: list[CodeCheck] = []
    for part in slices(lost):
        checks.extend(
            voucher_check(voucher, organization=organization, today=today)
            for voucher in Voucher.objects.select_related(
                "batch__version__product", "license"
            ).filter(pk__in=part)
        )
    # Not claimable yet it reads as usable: taken and released in between. Say so rather than
    # guess; the customer can submit it again.
    refused = [
        check.refusal()
        if check.reason
        else {"code": check.code, "reason": Reason.STOPPED, "params": {}}
        for check in checks_masked(checks, actor=conversion.created_by, organization=organization)
    ]

    conversion.next_group += len(groups)
    conversion.processed = min(conversion.total, conversion.processed + len(ids))
    conversion.converted += claimed
    conversion.updated_at = timezone.now()
    _progress_save(conversion, refused=refused)
    return licenses


def _claim(license_of: dict[int, UUID], *, organization: Organization, now: datetime) -> int:
    """Marks the vouchers redeemed by `organization` with their licenses, if still open.

    One conditional UPDATE per slice of vouchers, status and license together; returns how many
    it changed, which the caller checks against how many it meant to.
    """
    claimed = 0
    for part in slices(sorted(license_of)):
        if connection.vendor == "postgresql":
            claimed += _claim_from_values(part, license_of, organization=organization, now=now)
            continue
        # SQLite (the embedded default): a CASE over the slice's licenses.
        by_license: dict[UUID, list[int]] = defaultdict(list)
        for pk in part:
            by_license[license_of[pk]].append(pk)
        license_value: Any
        if len(by_license) == 1:
            license_value = Value(next(iter(by_license)), output_field=models.UUIDField())
        else:
            license_value = Case(
                *[When(pk__in=pks, then=Value(lic)) for lic, pks in by_license.items()],
                output_field=models.UUIDField(),
            )
        claimed += Voucher.objects.filter(pk__in=part, status=Voucher.Status.OPEN).update(
            status=Voucher.Status.REDEEMED,
            redeemed_by=organization,
            redeemed_at=now,
            license=license_value,
        )
    return claimed


_CLAIM_SQL = """
    UPDATE {table} AS voucher
    SET status = %s, redeemed_by_id = %s, redeemed_at = %s, license_id = claim.license_id
    FROM (VALUES {rows}) AS claim (id, license_id)
    WHERE voucher.id = claim.id AND voucher.status = %s
"""


def _claim_from_values(
    ids: Sequence[int], license_of: dict[int, UUID], *, organization: Organization, now: datetime
) -> int:
    # Each voucher paired with its license in a VALUES list: one statement whatever the number
    # of licenses, where a CASE with a branch per license cost the ORM more than the database.
    # The status condition is re-checked on the current row version, so a voucher changed since
    # it was locked (never, with the row locks) is skipped and the row count comes up short.
    rows = ", ".join(["(%s::bigint, %s::uuid)"] * len(ids))
    params: list[Any] = [Voucher.Status.REDEEMED, organization.pk, now]
    for pk in ids:
        params += [pk, license_of[pk]]
    params.append(Voucher.Status.OPEN)
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL.format(table=connection.ops.quote_name(Voucher._meta.db_table), rows=rows),
            params,
        )
        return cursor.rowcount


_APPEND_SQL = """
    UPDATE {table} SET
        result = jsonb_set(result, '{{refused}}', COALESCE(result -> 'refused', '[]') || %s::jsonb)
    WHERE id = %s
"""


def _progress_save(conversion: VoucherConversion, *, refused: list[dict[str, Any]]) -> None:
    """Records a chunk's progress, and appends the codes it could not convert to the result.

    On PostgreSQL one UPDATE appends to the JSONB array in place of reading the result into
    Python and writing all of it back.
    """
    VoucherConversion.objects.filter(pk=conversion.pk).update(
        next_group=conversion.next_group,
        processed=conversion.processed,
        converted=conversion.converted,
        updated_at=conversion.updated_at,
    )
    if not refused:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _APPEND_SQL.format(
                    table=connection.ops.quote_name(VoucherConversion._meta.db_table)
                ),
                [json.dumps(refused), conversion.pk],
            )
        return
    result = (
        VoucherConversion.objects.filter(pk=conversion.pk).values_list("result", flat=True).get()
        or {}
    )
    result.setdefault("refused", []).extend(refused)
    VoucherConversion.objects.filter(pk=conversion.pk).update(result=result)


def _finish(conversion: VoucherConversion, issued: list[License] | None) -> list[License]:
    # The licenses this run issued are all of them when it planned the conversion too; a run
    # that resumed one reads them from the conversion's rows.
    licenses = issued if issued is not None else conversion_licenses(conversion)
    if licenses:
        conversion_email_queue(conversion=conversion, licenses=licenses)
    conversion.status = VoucherConversion.Status.DONE
    conversion.finished_at = timezone.now()
    conversion.processed = conversion.total
    conversion.save(update_fields=["status", "finished_at", "processed", "updated_at"])
    # Up to 10,000 new licenses wait in the search indexes' pending lists, which every search
    # reads until they are merged: merged now, by the worker, not at the next beat.
    transaction.on_commit(partial(enqueue, merge_search_indexes), robust=True)
    audit_record(
        action="vouchers.converted",
        actor=conversion.created_by,
        organization=conversion.organization,
        obj=conversion,
        details={
            "vouchers": conversion.converted,
            "licenses": len(licenses),
            "refused": len(conversion.refused),
            "combine": conversion.combine,
        },
    )
    return licenses
