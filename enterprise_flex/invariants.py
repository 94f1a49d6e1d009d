"""Enterprise Flexible invariants (registered in EnterpriseFlexConfig.ready; run by
check_invariants)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Exists, F, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from licensing.models import License
from portal.invariants import Options
from portal.models import Membership

from .models import EFContractUser, EFDrawdown, EFLine


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


def contract_users_are_members(options: Options) -> Iterator[str]:
    """Everyone on a contract belongs to its organization: removing a member from the
    organization takes them off its contracts (services.contract_access_end), so that being
    invited back never restores a level."""
    members = Membership.objects.filter(
        user_id=OuterRef("user_id"), organization_id=OuterRef("contract__organization_id")
    )
    leftovers = EFContractUser.objects.filter(~Exists(members)).select_related("contract", "user")
    for row in leftovers.order_by("pk").iterator():
        yield (
            f"contract user {row.pk} ({row.user.email}, {row.level}) of {row.contract.number} "
            "is not a member of the contract's organization"
        )


CHECKS = {
    "enterprise_flex.lines_add_up": lines_add_up,
    "enterprise_flex.contract_users_are_members": contract_users_are_members,
}
