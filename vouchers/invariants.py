"""Voucher center invariants (registered in VouchersConfig.ready; run by check_invariants)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F, IntegerField, OuterRef, Subquery, Sum

from licensing.models import License
from portal.invariants import Options

from .models import Voucher


def vouchers_spent_once(options: Options) -> Iterator[str]:
    """A voucher is converted once: a spent voucher stays redeemed, and no license from
    vouchers holds more than the vouchers behind it (upgrades may only have lowered it)."""
    reopened = Voucher.objects.filter(license__isnull=False).exclude(status=Voucher.Status.REDEEMED)
    for code, status in reopened.values_list("code", "status").iterator():
        yield f"voucher {code} was converted but its status is {status!r}: convertible again"
    covered = (
        Voucher.objects.filter(license=OuterRef("pk"))
        .values("license")
        .annotate(total=Sum("batch__quantity_per_voucher"))
        .values("total")
    )
    larger = (
        License.objects.filter(source=License.Source.VOUCHER)
        .annotate(covered=Subquery(covered, output_field=IntegerField()))
        .filter(covered__isnull=False, quantity__gt=F("covered"))
        .values_list("pk", "quantity", "covered")
    )
    for pk, quantity, total in larger.iterator():
        yield f"license {pk} has quantity {quantity}, more than its vouchers' {total}"


CHECKS = {"vouchers.spent_once": vouchers_spent_once}
