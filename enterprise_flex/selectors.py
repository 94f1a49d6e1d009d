"""Reads of Enterprise Flexible. Each takes the actor's access: a contract the actor is not on
(or that belongs to another organization) is a 404, and the actor's level on the contract
(portal.policy's EF table) decides what else is shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, Sum
from django.http import Http404
from django.utils.translation import gettext as _

from licensing.models import License
from licensing.selectors import licenses_visible_to
from portal.models import Membership, User
from portal.policy import (
    EF_LEVEL_ACTIONS,
    OrganizationAccess,
    ef_delegated_level,
    ef_level_allows,
)

from .models import (
    ContractYear,
    EFContract,
    EFContractUser,
    EFDeploymentEntry,
    EFDeploymentReport,
    EFDrawdown,
    EFInvitation,
    EFLine,
    EFReminder,
    EFSite,
)
from .services import DueReminder


@dataclass(frozen=True)
class ContractAccess:
    """One actor's reach into one contract: the contract and the level they hold on it."""

    contract: EFContract
    level: str
    actor: User
    partner_id: int | None = None  # set when a delegated partner user acts for the customer

    def allows(self, action: str) -> bool:
        return ef_level_allows(self.level, action)

    def require(self, action: str) -> None:
        """Refuses with a translated 403 when the level does not allow `action`."""
        if not self.allows(action) and self.partner_id is not None:
            raise PermissionDenied(
                _(
                    "Partner access to contract %(number)s is for drawing down keys: its "
                    "deployment reports, sites and users are the customer's."
                )
                % {"number": self.contract.number}
            )
        if not self.allows(action):
            raise PermissionDenied(
                _("Your level on contract %(number)s does not allow this. Ask its super user.")
                % {"number": self.contract.number}
            )

    @property
    def can(self) -> dict[str, bool]:
        """The allowed actions, for templates: {% if reach.can.manage_sites %}."""
        return dict.fromkeys(EF_LEVEL_ACTIONS.get(self.level, frozenset()), True)

    @property
    def level_label(self) -> str:
        if self.partner_id is not None:
            return _("Channel partner (draws down keys)")
        return str(EFContractUser.Level(self.level).label)


def _contracts_of(organization_id: int) -> QuerySet[EFContract]:
    return EFContract.objects.filter(organization_id=organization_id).select_related("organization")


def contracts_for(*, actor: User, access: OrganizationAccess) -> list[ContractAccess]:
    """The contracts of the acting organization the actor is on, each with its level."""
    organization = access.organization
    delegated = ef_delegated_level(access)
    if access.is_delegated:
        if delegated is None:
            return []
        partner_id = access.partner.pk if access.partner is not None else None
        return [
            ContractAccess(contract=c, level=delegated, actor=actor, partner_id=partner_id)
            for c in _contracts_of(organization.pk).order_by("-period_start", "number")
        ]
    rows = (
        EFContractUser.objects.filter(user=actor, contract__organization_id=organization.pk)
        .select_related("contract__organization")
        .order_by("-contract__period_start", "contract__number")
    )
    return [ContractAccess(contract=r.contract, level=r.level, actor=actor) for r in rows]


def contract_for(*, actor: User, access: OrganizationAccess, number: str) -> ContractAccess:
    """One contract the actor reaches in the acting organization, or 404."""
    contract = _contracts_of(access.organization.pk).filter(number=number).first()
    if contract is None:
        raise Http404("No such contract.")
    if access.is_delegated:
        level = ef_delegated_level(access)
        if level is None:
            raise Http404("No such contract.")
        partner_id = access.partner.pk if access.partner is not None else None
        return ContractAccess(contract=contract, level=level, actor=actor, partner_id=partner_id)
    row = EFContractUser.objects.filter(contract=contract, user=actor).only("level").first()
    # Only the stored levels: "delegated" is a partner's, never a contract user's.
    if row is None or row.level not in EFContractUser.Level.values:
        raise Http404("No such contract.")
    return ContractAccess(contract=contract, level=row.level, actor=actor)


# ---------------------------------------------------------------------------------------------
# Contract page


def contract_lines(reach: ContractAccess) -> list[EFLine]:
    """The contract's lines with their product, in display order (figures are on the rows)."""
    return list(
        EFLine.objects.filter(contract=reach.contract)
        .select_related("version__product")
        .order_by("version__product__name", "version__version", "pk")
    )


def contract_sites(reach: ContractAccess, *, active_only: bool = False) -> list[EFSite]:
    """The contract's sites, active first."""
    sites = EFSite.objects.filter(contract=reach.contract)
    if active_only:
        sites = sites.filter(active=True)
    return list(sites.order_by("-active", "name"))


def contract_users(reach: ContractAccess) -> list[EFContractUser]:
    """The contract's users and levels."""
    return list(
        EFContractUser.objects.filter(contract=reach.contract)
        .select_related("user")
        .order_by("user__email")
    )


def open_invitations(reach: ContractAccess) -> list[EFInvitation]:
    """Invitations not yet accepted, for super users."""
    if not reach.allows("manage_users"):
        return []
    return list(
        EFInvitation.objects.filter(
            contract=reach.contract, accepted_at__isnull=True, revoked_at__isnull=True
        ).order_by("-created_at")
    )


def addable_members(reach: ContractAccess) -> QuerySet[Membership]:
    """Users of the customer organization who are not on the contract yet."""
    if not reach.allows("manage_users"):
        return Membership.objects.none()
    on_contract = EFContractUser.objects.filter(contract=reach.contract).values("user_id")
    return (
        Membership.objects.filter(organization_id=reach.contract.organization_id)
        .exclude(user_id__in=on_contract)
        .select_related("user")
        .order_by("user__email")
    )


def drawdowns_visible(reach: ContractAccess) -> QuerySet[EFDrawdown]:
    """Drawdowns the actor may see: all of the contract's, or their own, by level."""
    drawdowns = EFDrawdown.objects.filter(contract=reach.contract)
    if not reach.allows("view_all_drawdowns"):
        drawdowns = drawdowns.filter(created_by=reach.actor)
    return drawdowns.select_related(
        "line__version__product", "site", "license", "created_by", "partner"
    ).order_by("-created_at", "-pk")


def drawdown_for(reach: ContractAccess, pk: int) -> EFDrawdown:
    """One drawdown the actor may see, or 404."""
    drawdown = drawdowns_visible(reach).filter(pk=pk).first()
    if drawdown is None:
        raise Http404("No such drawdown.")
    return drawdown


def site_for(reach: ContractAccess, pk: int) -> EFSite:
    """A site of this contract, or 404 (a site of another contract is out of reach)."""
    site = EFSite.objects.filter(contract=reach.contract, pk=pk).first()
    if site is None:
        raise Http404("No such site.")
    return site


def contract_user_for(reach: ContractAccess, pk: int) -> EFContractUser:
    row = EFContractUser.objects.filter(contract=reach.contract, pk=pk).select_related("user")
    found = row.first()
    if found is None:
        raise Http404("No such contract user.")
    return found


def invitation_for(reach: ContractAccess, pk: int) -> EFInvitation:
    found = (
        EFInvitation.objects.filter(contract=reach.contract, pk=pk)
        .select_related("contract__organization")
        .first()
    )
    if found is None:
        raise Http404("No such invitation.")
    return found


def catalog_licenses(reach: ContractAccess) -> QuerySet[License]:
    """The licenses drawn down from the contract that the actor may see, as My licenses lists
    them (the one door: licensing's visibility first, the contract and level on top)."""
    organization = reach.contract.organization
    drawdowns = EFDrawdown.objects.filter(contract=reach.contract)
    if not reach.allows("view_all_drawdowns"):
        drawdowns = drawdowns.filter(created_by=reach.actor)
    return licenses_visible_to(actor=reach.actor, organization=organization).filter(
        pk__in=drawdowns.values("license_id")
    )


# ---------------------------------------------------------------------------------------------
# Deployment reports and true-up


def drawn_by_line_and_site(contract: EFContract, *, until: date) -> dict[tuple[int, int], int]:
    """Quantities drawn down per (line, site) up to a day: one grouped query, any count."""
    rows = (
        EFDrawdown.objects.filter(contract=contract, drawn_on__lte=until)
        .values_list("line_id", "site_id")
        .annotate(total=Sum("quantity"))
        .order_by()
    )
    return {(line_id, site_id): int(total) for line_id, site_id, total in rows}


@dataclass
class ReportRow:
    line: EFLine
    site: EFSite
    drawn: int
    declared: int | None
    # Where the year has no report of its own: the earlier submitted report's figure for the
    # site plus what was drawn down there since (as the true-up counts it), else None.
    carried: int | None = None

    @property
    def key(self) -> str:
        return f"q_{self.line.pk}_{self.site.pk}"

    @property
    def value(self) -> int:
        if self.declared is not None:
            return self.declared
        return self.drawn if self.carried is None else self.carried


@dataclass
class ReportView:
    contract_year: ContractYear
    report: EFDeploymentReport | None
    rows: list[ReportRow]
    lines: list[EFLine]
    sites: list[EFSite]
    # The earlier year whose submitted report prefills a year without one, else None.
    carried_from: int | None = None


def deployment_report_view(reach: ContractAccess, year: int) -> ReportView:
    """The year's report: a row per line and site that has drawdowns or a declared figure,
    prefilled with what the true-up would count without it: the latest submitted earlier
    report's figures plus what was drawn down since, else what was drawn down by the year's end.
    """
    contract_year = reach.contract.year(year)
    if contract_year is None:
        raise Http404("No such contract year.")
    basis = _deployment_basis(reach.contract, year)
    report = basis if basis is not None and basis.year == year else None
    entries = (
        {(e.line_id, e.site_id): e.quantity for e in EFDeploymentEntry.objects.filter(report=basis)}
        if basis is not None
        else {}
    )
    declared = entries if report is not None else {}
    carried: dict[tuple[int, int], int] = {}
    if basis is not None and report is None:
        since = _drawn_by_site_since(reach.contract, until=contract_year.end, report=basis)
        drawn = {key: total for key, (total, _since) in since.items()}
        carried = {key: figure + since.get(key, (0, 0))[1] for key, figure in entries.items()}
    else:
        drawn = drawn_by_line_and_site(reach.contract, until=contract_year.end)
    lines = contract_lines(reach)
    sites = contract_sites(reach)
    by_line = {line.pk: line for line in lines}
    by_site = {site.pk: site for site in sites}
    rows = [
        ReportRow(
            line=by_line[key[0]],
            site=by_site[key[1]],
            drawn=drawn.get(key, 0),
            declared=declared.get(key),
            carried=carried.get(key),
        )
        for key in sorted(set(drawn) | set(declared) | set(carried))
        if key[0] in by_line and key[1] in by_site
    ]
    rows.sort(key=lambda r: (r.line.version.product.name, r.line.version.version, r.site.name))
    return ReportView(
        contract_year=contract_year,
        report=report,
        rows=rows,
        lines=lines,
        sites=sites,
        carried_from=basis.year if basis is not None and carried else None,
    )


def deployment_reports(reach: ContractAccess) -> dict[int, EFDeploymentReport]:
    """The contract's reports by year."""
    return {r.year: r for r in EFDeploymentReport.objects.filter(contract=reach.contract)}


@dataclass
class TrueUpRow:
    line: EFLine
    committed: int
    drawn_to_date: int
    drawn_in_year: int
    deployed: int
    overage: int
    overage_value: Decimal

    @property
    def product_label(self) -> str:
        return f"{self.line.version.product.name} {self.line.version.version}"


@dataclass
class TrueUp:
    contract: EFContract
    contract_year: ContractYear
    # The report the deployed figures come from: the year's own (draft or submitted) or, where
    # the year has none, the latest submitted report of an earlier year (see true_up).
    report: EFDeploymentReport | None
    rows: list[TrueUpRow]
    # Overage value per currency: lines of one contract may be priced in several.
    totals: dict[str, Decimal] = field(default_factory=dict)
    # False for a year that has not begun: no figures (rows and totals are empty).
    started: bool = True

    @property
    def carried(self) -> bool:
        """The figures come from an earlier year's report (the year has none of its own)."""
        return self.report is not None and self.report.year != self.contract_year.number

    @property
    def deployed_source(self) -> str:
        if self.report is None:
            return "drawdowns"
        if self.carried:
            return "earlier_report"
        return str(self.report.status)


def _deployment_basis(contract: EFContract, year: int) -> EFDeploymentReport | None:
    """The report a year's deployed figures come from (one query): its own, draft or
    submitted, else the latest submitted report of an earlier year."""
    return (
        EFDeploymentReport.objects.filter(contract=contract, year__lte=year)
        .filter(Q(year=year) | Q(status=EFDeploymentReport.Status.SUBMITTED))
        .order_by("-year")
        .first()
    )


def true_up(reach: ContractAccess, year: int, *, today: date) -> TrueUp:
    """Committed vs deployed vs drawn down per line for one contract year.

    Deployed is what the year's report declares (drawn down by the year's end where it
    declares nothing); overage is deployment beyond the commitment, valued at the unit price.
    A year that has not begun has no figures: its true-up is empty and says when it starts
    (valuing drawdowns against a year nobody has deployed in would bill the same overage again
    for every future year).
    Two grouped queries over the drawdowns, whatever their number.
    """
    reach.require("view_true_up")
    contract = reach.contract
    contract_year = contract.year(year)
    if contract_year is None:
        raise Http404("No such contract year.")
    if today < contract_year.start:
        return TrueUp(
            contract=contract, contract_year=contract_year, report=None, rows=[], started=False
        )
    # A year without a report of its own keeps the latest submitted one's declarations rather
    # than falling back to the drawdowns: a report may declare more deployed than was drawn
    # down (copies installed from one key), and deployments do not silently drop below what
    # the customer last declared. What was drawn down at a site since that report's year is
    # added to its declared figure; a site it declared nothing for counts its drawdowns.
    report = _deployment_basis(contract, year)
    sums = (
        EFDrawdown.objects.filter(contract=contract, drawn_on__lte=contract_year.end)
        .values("line_id")
        .annotate(
            to_date=Sum("quantity"),
            in_year=Sum("quantity", filter=Q(drawn_on__gte=contract_year.start)),
        )
        .order_by()
    )
    drawn = {row["line_id"]: (row["to_date"] or 0, row["in_year"] or 0) for row in sums}
    declared: dict[int, dict[int, int]] = defaultdict(dict)
    by_site: dict[tuple[int, int], tuple[int, int]] = {}
    if report is not None:
        for line_id, site_id, quantity in EFDeploymentEntry.objects.filter(
            report=report
        ).values_list("line_id", "site_id", "quantity"):
            declared[line_id][site_id] = quantity
        by_site = _drawn_by_site_since(contract, until=contract_year.end, report=report)
    rows: list[TrueUpRow] = []
    totals: dict[str, Decimal] = {}
    for line in contract_lines(reach):
        to_date, in_year = drawn.get(line.pk, (0, 0))
        if report is None:
            deployed = to_date
        else:
            # Per site: the declared figure (plus what was drawn down there after the report's
            # year, when the report is an earlier year's), or what was drawn down where none
            # was declared.
            sites = {site for (line_id, site) in by_site if line_id == line.pk}
            sites |= set(declared[line.pk])
            deployed = 0
            for site in sites:
                total, since = by_site.get((line.pk, site), (0, 0))
                figure = declared[line.pk].get(site)
                deployed += total if figure is None else figure + since
        overage = max(0, deployed - line.committed_quantity)
        value = line.unit_value * overage
        totals[line.currency] = totals.get(line.currency, Decimal(0)) + value
        rows.append(
            TrueUpRow(
                line=line,
                committed=line.committed_quantity,
                drawn_to_date=to_date,
                drawn_in_year=in_year,
                deployed=deployed,
                overage=overage,
                overage_value=value,
            )
        )
    return TrueUp(
        contract=contract, contract_year=contract_year, report=report, rows=rows, totals=totals
    )


def _drawn_by_site_since(
    contract: EFContract, *, until: date, report: EFDeploymentReport
) -> dict[tuple[int, int], tuple[int, int]]:
    """Per (line, site): drawn down up to `until`, and the part of it drawn after the end of
    the report's year (0 for the year's own report). One grouped query, any count."""
    report_year = contract.year(report.year)
    report_end = report_year.end if report_year is not None else until
    rows = (
        EFDrawdown.objects.filter(contract=contract, drawn_on__lte=until)
        .values_list("line_id", "site_id")
        .annotate(total=Sum("quantity"), since=Sum("quantity", filter=Q(drawn_on__gt=report_end)))
        .order_by()
    )
    return {
        (line_id, site_id): (int(total), int(since or 0)) for line_id, site_id, total, since in rows
    }


# ---------------------------------------------------------------------------------------------
# Reminders

REMINDER_DAYS = (60, 30)


def reminders_due(*, today: date) -> list[DueReminder]:
    """Reminders to send today that were not sent before (one query each for candidates,
    reports and sent reminders)."""
    from .models import REPORT_DUE_DAYS

    horizon = today + timedelta(days=max(REMINDER_DAYS))
    # Active contracts whose deployment period, or the report window after it, is open.
    contracts = list(
        EFContract.objects.filter(
            status=EFContract.Status.ACTIVE,
            period_start__lte=horizon,
            grey_year_end__gte=today,
        ).order_by("pk")
    )
    if not contracts:
        return []
    ids = [c.pk for c in contracts]
    submitted = set(
        EFDeploymentReport.objects.filter(
            contract_id__in=ids, status=EFDeploymentReport.Status.SUBMITTED
        ).values_list("contract_id", "year")
    )
    sent = set(
        EFReminder.objects.filter(contract_id__in=ids).values_list("contract_id", "year", "reason")
    )
    due: list[DueReminder] = []
    for contract in contracts:
        for contract_year in contract.years():
            if (contract.pk, contract_year.number) in submitted:
                continue
            if today < contract_year.start:
                # A short last year can end within 60 days of a day before it starts: its
                # report cannot be written yet (services.report_window_problem).
                continue
            days_left = (contract_year.end - today).days
            reason: str | None = None
            if 0 <= days_left <= max(REMINDER_DAYS):
                # The smallest threshold crossed: a year first seen 20 days out gets the
                # 30-day reminder only; a day the scheduler missed is caught up the next run.
                threshold = min(d for d in REMINDER_DAYS if days_left <= d)
                reason = f"year_end_{threshold}"
            elif today > contract_year.end + timedelta(days=REPORT_DUE_DAYS):
                reason = EFReminder.Reason.REPORT_OVERDUE
            if reason is not None and (contract.pk, contract_year.number, reason) not in sent:
                due.append(
                    DueReminder(
                        contract=contract,
                        year=contract_year.number,
                        reason=str(reason),
                        days_left=days_left,
                    )
                )
    return due
