"""Version upgrades' invariants (registered in UpgradesConfig.ready; run by check_invariants)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from portal.invariants import Options

from .models import UpgradeLine, UpgradeRedemption


def lines_within_limit(options: Options) -> Iterator[str]:
    """An upgrade line's upgrades add up to what it spent, and never beyond what it allowed."""
    redeemed = (
        UpgradeRedemption.objects.filter(line=OuterRef("pk"))
        .values("line")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    lines = (
        UpgradeLine.objects.annotate(
            redeemed=Coalesce(
                Subquery(redeemed, output_field=IntegerField()),
                Value(0),
                output_field=IntegerField(),
            )
        )
        .exclude(redeemed=F("eligible_quantity") - F("remaining_quantity"))
        .values_list("pk", "eligible_quantity", "remaining_quantity", "redeemed")
        .order_by("pk")
    )
    for pk, eligible, remaining, redeemed_total in lines.iterator():
        spent = eligible - remaining
        reason = "beyond its limit" if redeemed_total > spent else "not matching its upgrades"
        yield (
            f"line {pk}: {redeemed_total} upgraded of {eligible} eligible, but {remaining} "
            f"remaining ({reason})"
        )


CHECKS = {"upgrades.lines_within_limit": lines_within_limit}
