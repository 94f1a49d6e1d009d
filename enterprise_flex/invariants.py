"""Enterprise Flexible invariants (registered in EnterpriseFlexConfig.ready; run by
check_invariants)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from licensing.models import License
from portal.invariants import Options

from .models import EFDrawdown, EFLine


def lines_add_up(options: Options) -> Iterator[str]:
    """A line's drawn-down figure is the sum of its drawdowns, and beyond the commitment only
    where the line allows overage; each drawdown's license holds exactly its quantity."""
    drawn = (
        EFDrawdown.objects.filter(line=OuterRef("pk"))
        .values("line")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    lines = EFLine.objects.annotate(
        summed=Coalesce(Subquery(drawn, output_field=IntegerField()), 0)
    ).select_related("contract")
    for line in lines.filter(~Q(drawn_quantity=F("summed"))).iterator():
        yield (
            f"line {line.pk} of {line.contract.number} says {line.drawn_quantity} drawn down, "
            f"its drawdowns add up to {line.summed}"  # type: ignore[attr-defined]
        )
    over = lines.filter(overage_allowed=False, drawn_quantity__gt=F("committed_quantity"))
    for line in over.iterator():
        yield (
            f"line {line.pk} of {line.contract.number} is drawn down beyond its commitment "
            f"({line.drawn_quantity} > {line.committed_quantity}) without overage"
        )
    mismatched = EFDrawdown.objects.exclude(license__quantity=F("quantity")).filter(
        license__source=License.Source.EF_DRAWDOWN
    )
    for pk, quantity in mismatched.values_list("pk", "quantity").iterator():
        yield f"drawdown {pk} of {quantity} has a license of another quantity"


CHECKS = {"enterprise_flex.lines_add_up": lines_add_up}
