"""Licensing's invariants (registered in LicensingConfig.ready; run by check_invariants)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from django.db.models import Count, F, OuterRef, Subquery

from portal.invariants import Options
from portal.models import AuditEvent

from .models import License, SerialNumber, SerialRedemption


def serials_redeemed_once(options: Options) -> Iterator[str]:
    """A serial is spent at most once, and its status says so.

    Redeemed exactly when it has its redemption row; at most one license minted from it (a
    renewal mints none); that license no larger than the serial.
    """
    reopened = SerialNumber.objects.filter(redemption__isnull=False).exclude(
        status=SerialNumber.Status.REDEEMED
    )
    for code, status in reopened.values_list("code", "status").iterator():
        yield f"serial {code} was redeemed but its status is {status!r}: it could be redeemed again"
    unrecorded = SerialNumber.objects.filter(
        status=SerialNumber.Status.REDEEMED, redemption__isnull=True
    )
    for code in unrecorded.values_list("code", flat=True).iterator():
        yield f"serial {code} is redeemed without its redemption record"
    twice = (
        License.objects.filter(source=License.Source.SERIAL)
        .filter(source_ref__in=SerialNumber.objects.values("code"))
        .values("source_ref")
        .annotate(licenses=Count("pk"))
        .filter(licenses__gt=1)
        .order_by("source_ref")
    )
    for row in twice.iterator():
        yield f"serial {row['source_ref']} minted {row['licenses']} licenses"
    serial_quantity = SerialNumber.objects.filter(code=OuterRef("source_ref")).values("quantity")
    larger = (
        License.objects.filter(source=License.Source.SERIAL)
        .annotate(allowed=Subquery(serial_quantity[:1]))
        .filter(allowed__isnull=False, quantity__gt=F("allowed"))
        .values_list("pk", "source_ref", "quantity", "allowed")
    )
    for pk, code, quantity, allowed in larger.iterator():
        yield f"license {pk} has quantity {quantity}, more than serial {code}'s {allowed}"
    wrong_kind = SerialRedemption.objects.exclude(kind=F("serial__kind"))
    for code in wrong_kind.values_list("code", flat=True).iterator():
        yield f"serial {code}'s redemption record does not match its kind"


CHUNK = 5000


def licenses_issued_once(options: Options) -> Iterator[str]:
    """Every license has exactly one `license.issued` audit event (the one mint wrote it)."""
    issued = AuditEvent.objects.filter(action="license.issued", object_type="licensing.license")
    pks = License.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=CHUNK)
    # A chunk of licenses at a time, each looked up through the audit log's object index:
    # memory stays flat, and ids are compared as text (a UUID's text form differs by database).
    while chunk := [str(pk) for pk in itertools.islice(pks, CHUNK)]:
        counts = dict(
            issued.filter(object_id__in=chunk)
            .values("object_id")
            .annotate(events=Count("pk"))
            .values_list("object_id", "events")
        )
        for pk in chunk:
            events = counts.get(pk, 0)
            if events != 1:
                yield f"license {pk} has {events} license.issued events, not 1"


def upgrade_serials_move_seats(options: Options) -> Iterator[str]:
    """An upgrade serial moves seats to its version, never makes them.

    The license it issued started (its `license.issued` event) with no more seats than the
    serial's quantity, and than the license it upgraded held then: a partial upgrade's
    `license.upgraded` event says what it moved and what was left; without one, the upgrade
    superseded the whole license, which keeps the quantity it had (nothing changes a
    superseded license).
    """
    redemptions = (
        SerialRedemption.objects.filter(kind=SerialNumber.Kind.UPGRADE)
        .order_by("pk")
        .values_list("code", "serial__quantity", "license_id", "license__supersedes_id")
        .iterator(chunk_size=CHUNK)
    )
    while chunk := list(itertools.islice(redemptions, CHUNK)):
        new_ids = [str(row[2]) for row in chunk]
        old_ids = [str(row[3]) for row in chunk if row[3] is not None]
        issued = dict(
            AuditEvent.objects.filter(
                action="license.issued", object_type="licensing.license", object_id__in=new_ids
            ).values_list("object_id", "details")
        )
        moved = {
            (object_id, details.get("serial")): details
            for object_id, details in AuditEvent.objects.filter(
                action="license.upgraded", object_type="licensing.license", object_id__in=old_ids
            ).values_list("object_id", "details")
        }
        superseded = dict(License.objects.filter(pk__in=old_ids).values_list("pk", "quantity"))
        for code, serial_quantity, new_id, old_id in chunk:
            started = (issued.get(str(new_id)) or {}).get("quantity")
            if started is None:  # licenses_issued_once says so
                continue
            if started > serial_quantity:
                yield (
                    f"license {new_id} started with {started} seats, more than serial {code}'s "
                    f"{serial_quantity}"
                )
            if old_id is None:
                yield f"license {new_id} from upgrade serial {code} upgraded no license"
                continue
            part = moved.get((str(old_id), code))
            held = part["quantity"] + part["left"] if part else superseded.get(old_id)
            if part and part["quantity"] != started:
                yield (
                    f"license {old_id} gave {part['quantity']} seats to upgrade serial {code}, "
                    f"whose license {new_id} started with {started}"
                )
            if held is not None and started > held:
                yield (
                    f"license {new_id} started with {started} seats, more than the {held} of "
                    f"license {old_id} it upgraded with serial {code}"
                )


CHECKS = {
    "serials.redeemed_once": serials_redeemed_once,
    "serials.upgrades_move_seats": upgrade_serials_move_seats,
    "licenses.issued_once": licenses_issued_once,
}
