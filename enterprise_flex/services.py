"""Writes of Enterprise Flexible: contracts and lines (staff), sites, users, drawdowns, reports.

Every write is here, audited, and called alike by views, admin, commands and tasks. A drawdown
locks its contract (shared) and its line, moves the line's drawn-down figure and mints the license
through licensing.license_issue in one transaction; the database's CHECK constraint on the line
backs the lock up. Every row lock on a contract or its lines is taken by _lock_contract, which
says the one order they are taken in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from licensing.models import License, ProductVersion, SupportRegistration, add_months
from licensing.services import IssueSource, license_email_queue, license_issue
from portal.formats import short_date
from portal.models import Membership, Organization, User
from portal.ratelimit import invitations_refusal
from portal.services import (
    MembershipEndRefused,
    audit_record,
    invitation_withdraw,
    membership_ensure,
)

from .emails import invitation_email_queue, reminder_email_queue, user_added_email_queue
from .models import (
    EFContract,
    EFContractUser,
    EFDeploymentEntry,
    EFDeploymentReport,
    EFDrawdown,
    EFInvitation,
    EFLine,
    EFReminder,
    EFSite,
    currency_problem,
    generate_contract_number,
)

# Far above any real deployment, far below the column's limit: a typo ("1e9") is refused.
MAX_QUANTITY = 1_000_000


def _grouped(number: int) -> str:
    """A quantity in a message, grouped as the language writes it: 1,000,000 or 1.000.000."""
    return number_format(number, force_grouping=True)


# A year's report can be submitted from this many days before the year ends (the first reminder).
REPORT_WINDOW_DAYS = 60
SITE_FIELDS = ("name", "address", "country", "contact_name", "contact_email", "contact_phone")


class EFError(Exception):
    """An illegal Enterprise Flexible state change; the message tells the user what to do."""


class DrawdownRefused(EFError):
    """A drawdown the contract does not allow now (period, status, commitment, site)."""


class ReportLocked(EFError):
    """The deployment report was submitted and is read-only."""


def _audit(
    action: str,
    *,
    contract: EFContract,
    actor: User | None,
    partner: Organization | None = None,
    obj: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    # As everywhere in the portal: a partner acting for the customer is the organization that
    # acted, and the customer is who it acted for.
    audit_record(
        action=action,
        actor=actor,
        organization=partner or contract.organization,
        acting_for=contract.organization if partner is not None else None,
        obj=obj if obj is not None else contract,
        details={"contract": contract.number, **(details or {})},
    )


# ---------------------------------------------------------------------------------------------
# Row locks


def _lock_contract(
    contract_id: int, *, lines: Iterable[int] = (), write: bool = False
) -> tuple[EFContract, dict[int, EFLine]]:
    """Locks a contract's row, then the given lines of it; returns them (lines by id; a line
    that is not the contract's is left out).

    THE LOCK ORDER of Enterprise Flexible. Every transaction that locks a contract or its lines
    takes the locks here, and in this order, so that two of them never wait on each other:

      1. the contract row: FOR SHARE by everyone who relies on its terms (drawdowns, line and
         site edits, deployment reports); FOR NO KEY UPDATE (`write=True`) by the one who
         changes it (contract_update). Drawdowns on different lines of one contract thus run
         side by side, while a change of the contract's dates or status waits for them, and
         they for it;
      2. then its lines, FOR UPDATE, in primary-key order;
      3. then, by the caller, the rows below them (a site, a deployment report).

    Admin's contract page saves in one transaction: the contract first (save_model ->
    contract_update, write), then the inlines (line_update, line_delete, site_update take the
    contract again, which that transaction already holds). A transaction that changes the
    contract must ask for `write` before anything else of the contract: two transactions that
    both share the row and then both want to write it would deadlock. The contract is never
    locked FOR UPDATE: that would also block the foreign key checks (FOR KEY SHARE) of every
    row inserted under it (drawdowns, invitations, contract users), which both modes above let
    through. Rows that are only inserted under a contract need no lock of their own here.
    """
    if write:
        contract = (
            EFContract.objects.select_for_update(of=("self",), no_key=True)
            .select_related("organization")
            .get(pk=contract_id)
        )
    else:
        if connection.vendor == "postgresql":  # the ORM has no FOR SHARE; SQLite locks it all
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM enterprise_flex_efcontract WHERE id = %s FOR SHARE",
                    [contract_id],
                )
        contract = EFContract.objects.select_related("organization").get(pk=contract_id)
    wanted = sorted(set(lines))
    if not wanted:
        return contract, {}
    # `of=("self",)`: the joined product rows are shared by every contract that sells them;
    # locking those would make unrelated customers queue behind each other.
    locked = (
        EFLine.objects.select_for_update(of=("self",))
        .select_related("version__product")
        .filter(contract_id=contract_id, pk__in=wanted)
        .order_by("pk")
    )
    found = {line.pk: line for line in locked}
    for line in found.values():
        line.contract = contract
    return contract, found


# ---------------------------------------------------------------------------------------------
# Contracts and lines (staff: admin and the ef_contracts command)


def default_grey_year_end(period_end: date) -> date:
    """The last day of the year that follows the deployment period: a year after its end."""
    return add_months(period_end, 12)


def contract_dates_refusal(
    *, period_start: date, period_end: date, grey_year_end: date | None
) -> tuple[str, str] | None:
    """The field at fault and why these dates cannot be a contract's, or None."""
    if period_end < period_start:
        return "period_end", _("The deployment period must end on or after the day it starts.")
    try:
        # Also what keeps the contract years computable (EFContract.years).
        default_grey_year_end(period_end)
    except OverflowError:
        return "period_end", _(
            "The deployment period ends too late to leave room for a grey year after it. "
            "Enter an earlier end date."
        )
    if grey_year_end is not None and grey_year_end <= period_end:
        return "grey_year_end", _("The grey year must end after the deployment period.")
    return None


def contract_dates_problem(
    *, period_start: date, period_end: date, grey_year_end: date | None
) -> str | None:
    """Why these dates cannot be a contract's, or None. Admin forms show it; services enforce it."""
    refusal = contract_dates_refusal(
        period_start=period_start, period_end=period_end, grey_year_end=grey_year_end
    )
    return refusal[1] if refusal else None


def _check_dates(period_start: date, period_end: date, grey_year_end: date | None) -> None:
    problem = contract_dates_problem(
        period_start=period_start, period_end=period_end, grey_year_end=grey_year_end
    )
    if problem:
        raise EFError(problem)


def _free_contract_number() -> str:
    # Eight random digits: a collision is rare, so look it up rather than loop on IntegrityError
    # (which would abort the caller's transaction); the unique constraint stays the final judge.
    while True:
        number = generate_contract_number()
        if not EFContract.objects.filter(number=number).exists():
            return number


@transaction.atomic
def contract_create(
    *,
    organization: Organization,
    period_start: date,
    period_end: date,
    grey_year_end: date | None = None,
    status: str = EFContract.Status.ACTIVE,
    actor: User | None,
    super_user: User | None = None,
) -> EFContract:
    """Creates a contract with its "Main site" (the customer's address), and its super user."""
    if organization.kind != Organization.Kind.CUSTOMER:
        raise EFError(
            _("%(name)s is not a customer organization: contracts are signed by customers.")
            % {"name": organization.name}
        )
    _check_dates(period_start, period_end, grey_year_end)
    grey_year_end = grey_year_end or default_grey_year_end(period_end)
    contract = EFContract.objects.create(
        number=_free_contract_number(),
        organization=organization,
        period_start=period_start,
        period_end=period_end,
        grey_year_end=grey_year_end,
        status=status,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    contact = super_user or _first_admin(organization)
    EFSite.objects.create(
        contract=contract,
        name=EFSite.MAIN_SITE_NAME,
        address=organization.address,
        country=organization.country,
        contact_name=contact.get_full_name() if contact else "",
        contact_email=contact.email if contact else "",
    )
    _audit(
        "ef.contract_created",
        contract=contract,
        actor=actor,
        details={
            "period_start": period_start.isoformat(),
            "period_end": period_end.isoformat(),
            "grey_year_end": grey_year_end.isoformat(),
        },
    )
    if super_user is not None:
        contract_user_set(
            contract=contract, user=super_user, level=EFContractUser.Level.SUPER, actor=actor
        )
    return contract


def _first_admin(organization: Organization) -> User | None:
    membership = (
        Membership.objects.filter(organization=organization, role=Membership.Role.ADMIN)
        .select_related("user")
        .order_by("created_at", "pk")
        .first()
    )
    return membership.user if membership else None


@transaction.atomic
def contract_update(
    *,
    contract: EFContract,
    actor: User | None,
    period_start: date,
    period_end: date,
    grey_year_end: date,
    status: str,
) -> EFContract:
    """Amends a contract's dates or status; keys already drawn down keep their maintenance."""
    _check_dates(period_start, period_end, grey_year_end)
    locked, _lines = _lock_contract(contract.pk, write=True)
    wanted = {
        "period_start": period_start,
        "period_end": period_end,
        "grey_year_end": grey_year_end,
        "status": status,
    }
    changes = _assign(locked, wanted, show=str)
    if not changes:
        return locked
    _audit("ef.contract_changed", contract=locked, actor=actor, details={"changes": changes})
    return locked


def line_change_refusal(
    *, drawn: int, committed: int, overage_allowed: bool, unit_value: Decimal | int = 0
) -> tuple[str, str] | None:
    """The field at fault and why a line cannot have these terms, or None."""
    if committed < 1 or committed > MAX_QUANTITY:
        return "committed_quantity", _("Enter a committed quantity from 1 to %(max)s.") % {
            "max": _grouped(MAX_QUANTITY)
        }
    if unit_value < 0:
        return "unit_value", _("The unit value cannot be negative.")
    # Also when overage is allowed: what is drawn down beyond the commitment stays overage, and
    # a line whose commitment covers its drawdowns may then stop allowing more.
    if committed < drawn:
        return "committed_quantity", _(
            "%(drawn)s are already drawn down on this line: the commitment cannot be lower."
        ) % {"drawn": _grouped(drawn)}
    return None


def line_change_problem(
    *, drawn: int, committed: int, overage_allowed: bool, unit_value: Decimal | int = 0
) -> str | None:
    """Why a line cannot have these terms, or None. Admin forms show it; services enforce it."""
    refusal = line_change_refusal(
        drawn=drawn, committed=committed, overage_allowed=overage_allowed, unit_value=unit_value
    )
    return refusal[1] if refusal else None


@transaction.atomic
def line_add(
    *,
    contract: EFContract,
    version: ProductVersion,
    committed_quantity: int,
    unit_value: Decimal,
    currency: str = "USD",
    overage_allowed: bool = False,
    actor: User | None,
) -> EFLine:
    """Adds a product version to a contract with its commitment."""
    problem = line_change_problem(
        drawn=0,
        committed=committed_quantity,
        overage_allowed=overage_allowed,
        unit_value=unit_value,
    )
    problem = problem or currency_problem(currency)
    if problem:
        raise EFError(problem)
    if EFLine.objects.filter(contract=contract, version=version).exists():
        raise EFError(
            _("%(version)s is already on this contract: change its line instead.")
            % {"version": version}
        )
    line = EFLine.objects.create(
        contract=contract,
        version=version,
        committed_quantity=committed_quantity,
        unit_value=unit_value,
        currency=currency.strip().upper(),
        overage_allowed=overage_allowed,
    )
    _audit(
        "ef.line_added",
        contract=contract,
        actor=actor,
        obj=line,
        details={
            "product": version.product.sku,
            "version": version.version,
            "committed": committed_quantity,
            "unit_value": str(unit_value),
            "currency": line.currency,
            "overage_allowed": overage_allowed,
        },
    )
    return line


def _locked_line(line: EFLine) -> EFLine:
    _contract, lines = _lock_contract(line.contract_id, lines=[line.pk])
    if line.pk not in lines:
        raise EFLine.DoesNotExist(f"EFLine {line.pk} is gone")
    return lines[line.pk]


@transaction.atomic
def line_update(
    *,
    line: EFLine,
    actor: User | None,
    committed_quantity: int,
    unit_value: Decimal,
    currency: str,
    overage_allowed: bool,
) -> EFLine:
    """Amends a line; a commitment below what is drawn down is refused."""
    # The lock makes the check and a concurrent drawdown take turns.
    locked = _locked_line(line)
    problem = line_change_problem(
        drawn=locked.drawn_quantity,
        committed=committed_quantity,
        overage_allowed=overage_allowed,
        unit_value=unit_value,
    )
    problem = problem or currency_problem(currency)
    if problem:
        raise EFError(problem)
    wanted = {
        "committed_quantity": committed_quantity,
        "unit_value": unit_value,
        "currency": currency.strip().upper(),
        "overage_allowed": overage_allowed,
    }
    changes = _assign(locked, wanted, show=str)
    if not changes:
        return locked
    _audit("ef.line_changed", contract=locked.contract, actor=actor, obj=locked, details=changes)
    return locked


@transaction.atomic
def line_delete(*, line: EFLine, actor: User | None) -> None:
    """Removes a line nothing was drawn down from."""
    locked = _locked_line(line)
    if locked.drawn_quantity or EFDrawdown.objects.filter(line=locked).exists():
        raise EFError(_("Keys were drawn down from this line: it cannot be removed."))
    contract = locked.contract
    _audit(
        "ef.line_removed",
        contract=contract,
        actor=actor,
        details={"version": str(locked.version), "committed": locked.committed_quantity},
    )
    locked.delete()


# ---------------------------------------------------------------------------------------------
# Sites


def _plain(value: Any) -> Any:
    return value if isinstance(value, bool | int | type(None)) else str(value)


def _assign(obj: Model, wanted: Mapping[str, Any], *, show: Callable[[Any], Any]) -> dict[str, Any]:
    """Sets and saves the fields whose wanted value differs; returns {field: {from, to}} for the
    audit trail (empty, and nothing saved, when nothing changes)."""
    changes = {
        name: {"from": show(getattr(obj, name)), "to": show(value)}
        for name, value in wanted.items()
        if getattr(obj, name) != value
    }
    if changes:
        for name, value in wanted.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(wanted))
    return changes


def _site_values(values: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {name: str(values.get(name, "") or "").strip() for name in SITE_FIELDS}
    cleaned["contact_email"] = cleaned["contact_email"].lower()
    if not cleaned["name"]:
        raise EFError(_("Give the site a name."))
    return cleaned


@transaction.atomic
def site_create(
    *,
    contract: EFContract,
    values: Mapping[str, Any],
    actor: User | None,
    partner: Organization | None = None,
) -> EFSite:
    """Adds a deployment site to a contract."""
    data = _site_values(values)
    if EFSite.objects.filter(contract=contract, name__iexact=data["name"]).exists():
        raise EFError(
            _("This contract already has a site called %(name)s. Choose another name.")
            % {"name": data["name"]}
        )
    site = EFSite.objects.create(contract=contract, **data)
    _audit("ef.site_added", contract=contract, actor=actor, partner=partner, obj=site, details=data)
    return site


@transaction.atomic
def site_update(
    *,
    site: EFSite,
    values: Mapping[str, Any],
    active: bool,
    actor: User | None,
    partner: Organization | None = None,
) -> EFSite:
    """Edits a site; keys drawn down before keep the contacts they were registered with."""
    data = _site_values(values)
    contract, _lines = _lock_contract(site.contract_id)
    locked = EFSite.objects.select_for_update(of=("self",)).get(pk=site.pk)
    locked.contract = contract
    clash = (
        EFSite.objects.filter(contract_id=locked.contract_id, name__iexact=data["name"])
        .exclude(pk=locked.pk)
        .exists()
    )
    if clash:
        raise EFError(
            _("This contract already has a site called %(name)s. Choose another name.")
            % {"name": data["name"]}
        )
    wanted: dict[str, Any] = {**data, "active": active}
    # A country is a Country object on the model, a code here: the audit keeps the code.
    changes = _assign(locked, wanted, show=_plain)
    if not changes:
        return locked
    _audit(
        "ef.site_changed",
        contract=locked.contract,
        actor=actor,
        partner=partner,
        obj=locked,
        details={"changes": changes},
    )
    return locked


# ---------------------------------------------------------------------------------------------
# Contract users and invitations


def _members_of_the_customer(contract: EFContract) -> dict[str, int]:
    # Removing someone from the organization ends their contract rows (contract_access_end);
    # rows left by removals from before that count for nothing: they cannot act on the contract.
    return {"user__memberships__organization_id": contract.organization_id}


def _lock_super_users(contract: EFContract) -> list[int]:
    # Two super users demoting each other at once take turns here; one of them is refused.
    # Only super users still in the organization count: one who left cannot stand in.
    return list(
        EFContractUser.objects.select_for_update(of=("self",))
        .filter(
            contract=contract,
            level=EFContractUser.Level.SUPER,
            **_members_of_the_customer(contract),
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _last_super_user_message() -> str:
    return _("A contract needs at least one super user. Make another user super user first.")


def contract_user_problem(*, organization: Organization, user: User) -> str | None:
    """Why `user` cannot be put on a contract of `organization`, or None."""
    if not Membership.objects.filter(user=user, organization=organization).exists():
        return _(
            "%(email)s is not a user of %(organization)s. Invite them by email instead: "
            "accepting adds them to the organization."
        ) % {"email": user.email, "organization": organization.name}
    return None


@transaction.atomic
def contract_user_set(
    *, contract: EFContract, user: User, level: str, actor: User | None
) -> EFContractUser:
    """Adds a user of the customer organization to the contract, or changes their level."""
    if level not in EFContractUser.Level.values:
        raise EFError(_("Choose a level: contract user, configuration user or super user."))
    problem = contract_user_problem(organization=contract.organization, user=user)
    if problem:
        raise EFError(problem)
    supers = _lock_super_users(contract)
    existing = EFContractUser.objects.filter(contract=contract, user=user).first()
    if existing is None:
        contract_user = EFContractUser.objects.create(
            contract=contract,
            user=user,
            level=level,
            added_by=actor if actor is not None and actor.is_authenticated else None,
        )
        _audit(
            "ef.user_added",
            contract=contract,
            actor=actor,
            obj=contract_user,
            details={"email": user.email, "level": level},
        )
        user_added_email_queue(contract_user=contract_user, actor=actor)
        return contract_user
    if existing.level == level:
        return existing
    if existing.pk in supers and len(supers) == 1:
        raise EFError(_last_super_user_message())
    old = existing.level
    existing.level = level
    existing.save(update_fields=["level"])
    _audit(
        "ef.user_level_changed",
        contract=contract,
        actor=actor,
        obj=existing,
        details={"email": user.email, "from": old, "to": level},
    )
    return existing


@transaction.atomic
def contract_user_remove(*, contract_user: EFContractUser, actor: User | None) -> None:
    """Takes a user off the contract; their drawdowns and licenses stay the customer's."""
    contract = contract_user.contract
    supers = _lock_super_users(contract)
    if contract_user.pk in supers and len(supers) == 1:
        raise EFError(_last_super_user_message())
    email = contract_user.user.email
    level = contract_user.level
    EFContractUser.objects.filter(pk=contract_user.pk).delete()
    _audit(
        "ef.user_removed",
        contract=contract,
        actor=actor,
        details={"email": email, "level": level},
    )


def _contracts_orphaned_by(
    *, organization: Organization, user: User, leaving: Collection[int], lock: bool
) -> list[EFContract]:
    # The contracts `user` is the last super user of once the members `leaving` (user ids,
    # theirs included) are gone, if any other member stays who could take over. Under `lock`
    # their super users are locked, contract by contract in one order, before anything is
    # removed: two administrators removing a contract's last two super users at once (or one
    # demoting the other meanwhile, contract_user_set) take turns, and the second sees the
    # first's change. Without it, an answer for a form, which the removal checks again.
    staying = Membership.objects.filter(organization=organization).exclude(user_id__in=leaving)
    if not staying.exists():
        return []
    held = EFContractUser.objects.filter(
        user=user, contract__organization=organization, level=EFContractUser.Level.SUPER
    ).values_list("contract_id", flat=True)
    orphaned = []
    for contract in EFContract.objects.filter(pk__in=list(held)).order_by("pk"):
        supers = EFContractUser.objects.filter(
            contract=contract,
            level=EFContractUser.Level.SUPER,
            **_members_of_the_customer(contract),
        ).order_by("pk")
        if lock:  # the rows _lock_super_users locks, in its order
            supers = supers.select_for_update(of=("self",))
        if not [
            pk for pk, user_id in supers.values_list("pk", "user_id") if user_id not in leaving
        ]:
            orphaned.append(contract)
    return orphaned


def _orphaned_message(user: User, contracts: list[EFContract]) -> str:
    return ngettext(
        "%(email)s is the last super user of contract %(contracts)s. Make another user "
        "super user of contract %(contracts)s first, then remove %(email)s.",
        "%(email)s is the last super user of contracts %(contracts)s. Make another user "
        "super user of each of these contracts first, then remove %(email)s.",
        len(contracts),
    ) % {"email": user.email, "contracts": ", ".join(c.number for c in contracts)}


def contract_access_end_problem(
    *, organization: Organization, users: Collection[User]
) -> str | None:
    """Why `users` cannot all leave `organization` now (one is the last super user of a
    contract), or None: for a form (staff's Members inline in admin), read without locks."""
    leaving = {user.pk for user in users}
    for user in users:
        orphaned = _contracts_orphaned_by(
            organization=organization, user=user, leaving=leaving, lock=False
        )
        if orphaned:
            return _orphaned_message(user, orphaned)
    return None


@transaction.atomic
def contract_access_end(*, organization: Organization, user: User, actor: User | None) -> None:
    """Takes a person removed from `organization` off each of its contracts, and withdraws the
    contract invitations still open for their address (accepting one would make them a member
    again). The portal calls it when a member is removed (portal.services.membership_ended_register,
    from EnterpriseFlexConfig.ready), in the removal's transaction and with its actor.

    Invited back to the organization later, they hold no contract until a super user or staff
    gives them a level again. Their drawdowns and licenses stay the customer's.

    The last super user of a contract cannot leave while someone else in the organization could
    take over (MembershipEndRefused: the removal is undone, the message names the contracts).
    When nobody is left to take over (staff emptied the organization in admin), they leave: one
    outside the organization could not act anyway (_lock_super_users), and staff give the
    contract a super user again in admin.
    """
    # Called after the membership row is gone: `user` no longer counts as a super user anyway.
    orphaned = _contracts_orphaned_by(
        organization=organization, user=user, leaving={user.pk}, lock=True
    )
    if orphaned:
        raise MembershipEndRefused(_orphaned_message(user, orphaned))
    rows = list(
        EFContractUser.objects.select_for_update(of=("self",))
        .filter(user=user, contract__organization=organization)
        .select_related("contract__organization")
        .order_by("pk")
    )
    for row in rows:
        row.delete()
        _audit(
            "ef.user_removed",
            contract=row.contract,
            actor=actor,
            details={"email": user.email, "level": row.level, "reason": "left_organization"},
        )
    now = timezone.now()
    invitations = list(
        EFInvitation.objects.select_for_update(of=("self",))
        .filter(
            email__iexact=user.email,
            contract__organization=organization,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        .select_related("contract__organization")
        .order_by("pk")
    )
    for invitation in invitations:
        invitation.revoked_at = now
        invitation.save(update_fields=["revoked_at"])
        _audit(
            "ef.invitation_revoked",
            contract=invitation.contract,
            actor=actor,
            obj=invitation,
            details={"email": invitation.email, "reason": "left_organization"},
        )


@transaction.atomic
def invitation_create(*, contract: EFContract, email: str, level: str, actor: User) -> EFInvitation:
    """Invites an email address to the contract at `level` (inviting again re-sends it)."""
    email = email.strip().lower()
    if level not in EFContractUser.Level.values:
        raise EFError(_("Choose a level: contract user, configuration user or super user."))
    # The portal's limit on emails to addresses a user typed (invitations and shares): the
    # organization's row lock makes concurrent invitations count one after the other.
    Organization.objects.select_for_update().filter(pk=contract.organization_id).first()
    refusal = invitations_refusal(actor=actor, organization=contract.organization)
    if refusal:
        raise EFError(refusal)
    if EFContractUser.objects.filter(contract=contract, user__email__iexact=email).exists():
        raise EFError(
            _("%(email)s is already a user of this contract: change their level instead.")
            % {"email": email}
        )
    now = timezone.now()
    invitation = (
        EFInvitation.objects.select_for_update()
        .filter(contract=contract, email=email, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if invitation is not None and (not invitation.is_open(now=now) or invitation.level != level):
        invitation.revoked_at = now
        invitation.save(update_fields=["revoked_at"])
        invitation = None
    if invitation is None:
        invitation = EFInvitation.objects.create(
            contract=contract, email=email, level=level, invited_by=actor
        )
    invitation_email_queue(invitation=invitation, inviter=actor)
    _audit(
        "ef.invitation_sent",
        contract=contract,
        actor=actor,
        obj=invitation,
        details={"email": email, "level": level},
    )
    return invitation


@transaction.atomic
def invitation_accept(*, invitation: EFInvitation, user: User) -> EFContractUser:
    """Puts the invited user on the contract (and in the customer organization, as a member)."""
    locked = (
        # `of=("self",)`: the invitation only. The contract and its organization are read, not
        # locked: a drawdown holds the contract shared and then needs the organization (its
        # license is the organization's), so locking both here could close a circle.
        EFInvitation.objects.select_for_update(of=("self",)).select_related(
            "contract__organization"
        )
    ).get(pk=invitation.pk)
    if not locked.is_open(now=timezone.now()):
        raise EFError(_("This invitation has expired or was already used. Ask for a new one."))
    if locked.email.lower() != user.email.lower():
        raise EFError(
            _("This invitation was sent to %(email)s. Log in with that address to accept it.")
            % {"email": locked.email}
        )
    contract = locked.contract
    locked.accepted_at = timezone.now()
    locked.save(update_fields=["accepted_at"])
    membership_ensure(
        organization=contract.organization,
        user=user,
        actor=user,
        reason=f"ef_invitation:{contract.number}",
    )
    existing = EFContractUser.objects.filter(contract=contract, user=user).first()
    if existing is not None:
        contract_user = existing  # already added meanwhile: the level given then stands
    else:
        contract_user = EFContractUser.objects.create(
            contract=contract, user=user, level=locked.level, added_by=locked.invited_by
        )
    _audit(
        "ef.invitation_accepted",
        contract=contract,
        actor=user,
        obj=contract_user,
        details={"email": user.email, "level": contract_user.level},
    )
    return contract_user


@transaction.atomic
def invitation_revoke(*, invitation: EFInvitation, actor: User) -> None:
    """Withdraws an open invitation; only a super user of the contract may."""
    contract = invitation.contract
    # Checked again under the super users' lock (the page checked before): one demoted, or
    # taken off the contract or the organization, while the request was under way cannot act.
    supers = _lock_super_users(contract)
    if not EFContractUser.objects.filter(pk__in=supers, user=actor).exists():
        raise EFError(
            _("Your level on contract %(number)s does not allow this. Ask its super user.")
            % {"number": contract.number}
        )
    # The invitee may have accepted (or another super user withdrawn) since the page listed
    # the invitation.
    withdrawn = invitation_withdraw(invitation)
    if withdrawn is not True:
        if withdrawn is None:
            raise EFError(
                _(
                    "%(email)s already accepted this invitation: take them off the contract's "
                    "users if they should not have access."
                )
                % {"email": invitation.email}
            )
        return  # withdrawn already, and audited then
    _audit(
        "ef.invitation_revoked",
        contract=contract,
        actor=actor,
        obj=invitation,
        details={"email": invitation.email},
    )


# ---------------------------------------------------------------------------------------------
# Drawdown


def quantity_problem(quantity: int, *, line: EFLine) -> str | None:
    """Why `quantity` cannot be drawn down from `line` as it stands, or None.

    The drawdown wizard shows it as a form error; drawdown_create checks it again under the
    line's lock, where it is final.
    """
    if quantity < 1 or quantity > MAX_QUANTITY:
        return _("Enter a quantity from 1 to %(max)s.") % {"max": _grouped(MAX_QUANTITY)}
    if not line.overage_allowed and quantity > line.remaining_quantity:
        if line.remaining_quantity == 0:
            return _(
                "Everything committed on this line is drawn down, and it does not allow "
                "overage. Ask your account manager to amend the contract."
            )
        return _(
            "Only %(remaining)s are left on this line, and it does not allow overage. Enter "
            "%(remaining)s or less."
        ) % {"remaining": line.remaining_quantity}
    return None


def period_problem(contract: EFContract, *, today: date) -> str | None:
    """Why the contract allows no drawdown today, with its dates, or None."""
    if contract.status != EFContract.Status.ACTIVE:
        return _(
            "Contract %(number)s is %(status)s: no keys can be drawn down. Contact your account "
            "manager."
        ) % {"number": contract.number, "status": contract.get_status_display().lower()}
    dates = {
        "number": contract.number,
        "start": short_date(contract.period_start),
        "end": short_date(contract.period_end),
        "grey": short_date(contract.grey_year_end),
    }
    phase = contract.phase(today=today)
    if phase == EFContract.Phase.UPCOMING:
        return (
            _(
                "The deployment period of contract %(number)s runs from %(start)s to %(end)s: "
                "keys can be drawn down from %(start)s."
            )
            % dates
        )
    if phase == EFContract.Phase.GREY:
        return (
            _(
                "The deployment period of contract %(number)s ended on %(end)s. Maintenance "
                "continues until %(grey)s, but no more keys can be drawn down."
            )
            % dates
        )
    if phase == EFContract.Phase.ENDED:
        return _("Contract %(number)s ended on %(grey)s: no more keys can be drawn down.") % dates
    return None


def _site_registration(site: EFSite, organization: Organization) -> SupportRegistration:
    # A snapshot per drawdown: editing the site later (or one license's registration in My
    # licenses) never rewrites who another key was registered to.
    return SupportRegistration.objects.create(
        organization=organization,
        company=organization.name,
        address=site.address or organization.address,
        country=site.country or organization.country,
        primary_name=site.contact_name,
        primary_email=site.contact_email,
        primary_phone=site.contact_phone,
        technical_name=site.contact_name,
        technical_email=site.contact_email,
        technical_phone=site.contact_phone,
    )


@dataclass(frozen=True)
class DrawdownRequest:
    """What the wizard's steps collected; ids as posted, checked against the contract."""

    line_id: int
    site_id: int
    quantity: int
    host_id: str = ""


@transaction.atomic
def drawdown_create(
    *,
    contract: EFContract,
    request: DrawdownRequest,
    actor: User,
    token: str,
    partner: Organization | None = None,
    today: date | None = None,
) -> EFDrawdown:
    """Draws `quantity` keys down from a line for a site: one license, maintenance to the end
    of the grey year, emailed with its file to the actor and the site's contact.

    The contract's shared lock, then the line's row lock (_lock_contract's order, the one staff's
    edits take too), serialise drawdowns of one line, so the commitment check and the update of
    its drawn-down figure cannot interleave, and a change of the contract's status or dates
    waits for the drawdown or the drawdown for it; the CHECK constraint refuses an over-drawn
    line even if they did interleave. A repeated token returns the first drawdown.
    """
    today = today or timezone.localdate()
    previous = _drawdown_by_token(token, contract)
    if previous is not None:
        return previous
    locked_contract, lines = _lock_contract(contract.pk, lines=[request.line_id])
    line = lines.get(request.line_id)
    if line is None:
        raise DrawdownRefused(_("Choose a product of this contract."))
    # Checked again under the lock: a concurrent confirmation with the same token waited here
    # for the first one to commit, and now finds its drawdown.
    previous = _drawdown_by_token(token, contract)
    if previous is not None:
        return previous
    problem = period_problem(locked_contract, today=today) or quantity_problem(
        request.quantity, line=line
    )
    if problem:
        raise DrawdownRefused(problem)
    site = EFSite.objects.filter(pk=request.site_id, contract=contract, active=True).first()
    if site is None:
        raise DrawdownRefused(_("Choose one of the contract's active sites."))
    host_id = request.host_id.strip()
    if line.version.product.node_locked and not host_id:
        raise DrawdownRefused(
            _("%(product)s is node-locked: enter the host ID of the machine.")
            % {"product": line.version.product.name}
        )

    before = line.drawn_quantity
    overage = max(0, before + request.quantity - max(before, line.committed_quantity))
    EFLine.objects.filter(pk=line.pk).update(drawn_quantity=F("drawn_quantity") + request.quantity)
    organization = locked_contract.organization
    license = license_issue(
        source=IssueSource(
            kind=License.Source.EF_DRAWDOWN,
            ref=locked_contract.number,
            version=line.version,
            quantity=request.quantity,
            maintenance_start=today,
            maintenance_end=locked_contract.grey_year_end,
            host_id=host_id if line.version.product.node_locked else "",
        ),
        owner=organization,
        registration=_site_registration(site, organization),
        acting_user=actor,
        notify=False,
    )
    # The mint's email, saying what the key was drawn down from: the same words as a Get-a-key
    # email left the site's contact to guess which contract and site it is for.
    license_email_queue(
        license=license,
        acting_user=actor,
        event="issued",
        context={"drawdown_contract": locked_contract.number, "drawdown_site": site.name},
    )
    drawdown = EFDrawdown.objects.create(
        contract=locked_contract,
        line=line,
        site=site,
        quantity=request.quantity,
        overage_quantity=overage,
        license=license,
        drawn_on=today,
        created_by=actor,
        partner=partner,
        token=token,
    )
    _audit(
        "ef.drawdown",
        contract=locked_contract,
        actor=actor,
        partner=partner,
        obj=drawdown,
        details={
            "product": line.version.product.sku,
            "version": line.version.version,
            "quantity": request.quantity,
            "overage": overage,
            "site": site.name,
            "license": str(license.pk),
        },
    )
    return drawdown


def _drawdown_by_token(token: str, contract: EFContract) -> EFDrawdown | None:
    # A bare index probe first: almost every confirmation is a first one, and the full read
    # with its joins is only needed for a repeat.
    pk = EFDrawdown.objects.filter(token=token, contract=contract).values_list("pk", flat=True)
    found = pk.order_by().first()
    if found is None:
        return None
    return EFDrawdown.objects.select_related("license", "line__version__product", "site").get(
        pk=found
    )


# ---------------------------------------------------------------------------------------------
# Deployment reports

ReportEntries = Mapping[tuple[int, int], int]  # (line id, site id) -> deployed quantity


def report_window_problem(contract: EFContract, year: int, *, today: date) -> str | None:
    """Why the year's report cannot be edited yet, or None."""
    contract_year = contract.year(year)
    if contract_year is None:
        return _("Contract %(number)s has no year %(year)s.") % {
            "number": contract.number,
            "year": year,
        }
    if today < contract_year.start:
        return _("Contract year %(year)s starts on %(date)s: report it from then on.") % {
            "year": year,
            "date": short_date(contract_year.start),
        }
    return None


def submit_window_opens(contract: EFContract, year: int) -> date | None:
    contract_year = contract.year(year)
    if contract_year is None:
        return None
    return max(contract_year.start, contract_year.end - timedelta(days=REPORT_WINDOW_DAYS))


def _locked_report(contract: EFContract, year: int) -> EFDeploymentReport:
    report, _created = EFDeploymentReport.objects.get_or_create(contract=contract, year=year)
    return EFDeploymentReport.objects.select_for_update().get(pk=report.pk)


def _write_entries(report: EFDeploymentReport, entries: ReportEntries) -> dict[str, int]:
    line_ids = set(
        EFLine.objects.filter(contract_id=report.contract_id).values_list("pk", flat=True)
    )
    site_ids = set(
        EFSite.objects.filter(contract_id=report.contract_id).values_list("pk", flat=True)
    )
    for (line_id, site_id), quantity in entries.items():
        if line_id not in line_ids or site_id not in site_ids:
            raise EFError(_("Report only the products and sites of this contract."))
        if not 0 <= quantity <= MAX_QUANTITY:
            raise EFError(
                _("Enter deployed quantities from 0 to %(max)s.") % {"max": _grouped(MAX_QUANTITY)}
            )
    current = {
        (e.line_id, e.site_id): e.quantity for e in EFDeploymentEntry.objects.filter(report=report)
    }
    changed = {f"{k[0]}/{k[1]}": v for k, v in entries.items() if current.get(k) != v}
    if changed:
        EFDeploymentEntry.objects.filter(report=report).delete()
        EFDeploymentEntry.objects.bulk_create(
            [
                EFDeploymentEntry(report=report, line_id=k[0], site_id=k[1], quantity=v)
                for k, v in {**current, **entries}.items()
            ]
        )
    return changed


@transaction.atomic
def deployment_report_save(
    *,
    contract: EFContract,
    year: int,
    entries: ReportEntries,
    actor: User,
    partner: Organization | None = None,
    today: date | None = None,
) -> EFDeploymentReport:
    """Saves declared deployed quantities in the year's draft report."""
    today = today or timezone.localdate()
    # The contract first (_lock_contract's order): its years are read as they stand, and its
    # lines and sites cannot leave while the entries naming them are written.
    contract, _lines = _lock_contract(contract.pk)
    problem = report_window_problem(contract, year, today=today)
    if problem:
        raise EFError(problem)
    report = _locked_report(contract, year)
    if report.is_submitted:
        raise ReportLocked(
            _("The report for year %(year)s was submitted and can no longer change.")
            % {"year": year}
        )
    changed = _write_entries(report, entries)
    report.updated_at = timezone.now()
    report.updated_by = actor
    report.save(update_fields=["updated_at", "updated_by"])
    if changed:
        _audit(
            "ef.report_saved",
            contract=contract,
            actor=actor,
            partner=partner,
            obj=report,
            details={"year": year, "entries": changed},
        )
    return report


@transaction.atomic
def deployment_report_submit(
    *,
    contract: EFContract,
    year: int,
    entries: ReportEntries,
    actor: User,
    today: date | None = None,
) -> EFDeploymentReport:
    """Saves and submits the year's report: from then on it is read-only."""
    today = today or timezone.localdate()
    contract, _lines = _lock_contract(contract.pk)  # as deployment_report_save
    problem = report_window_problem(contract, year, today=today)
    if problem:
        raise EFError(problem)
    opens = submit_window_opens(contract, year)
    if opens is not None and today < opens:
        raise EFError(
            _("The report for year %(year)s can be submitted from %(date)s.")
            % {"year": year, "date": short_date(opens)}
        )
    report = _locked_report(contract, year)
    if report.is_submitted:
        raise ReportLocked(
            _("The report for year %(year)s was already submitted.") % {"year": year}
        )
    _write_entries(report, entries)
    now = timezone.now()
    report.status = EFDeploymentReport.Status.SUBMITTED
    report.submitted_at = now
    report.submitted_by = actor
    report.updated_at = now
    report.updated_by = actor
    report.save()
    totals = {str(line_id): total for line_id, total in _entry_totals(report).items()}
    _audit(
        "ef.report_submitted",
        contract=contract,
        actor=actor,
        obj=report,
        details={"year": year, "deployed_by_line": totals},
    )
    return report


def _entry_totals(report: EFDeploymentReport) -> dict[int, int]:
    totals: dict[int, int] = {}
    for line_id, quantity in EFDeploymentEntry.objects.filter(report=report).values_list(
        "line_id", "quantity"
    ):
        totals[line_id] = totals.get(line_id, 0) + quantity
    return totals


# ---------------------------------------------------------------------------------------------
# Reminders (Celery beat)


@dataclass(frozen=True)
class DueReminder:
    contract: EFContract
    year: int
    reason: str
    days_left: int


def reminders_send(*, today: date) -> int:
    """Emails super users 60 and 30 days before a contract year ends and when a year's report
    is overdue; returns how many reminders it sent. Never twice for a contract, year and reason.
    """
    from .selectors import reminders_due  # reads live in selectors

    sent = 0
    for due in reminders_due(today=today):
        if _reminder_send(due):
            sent += 1
    return sent


@transaction.atomic
def _reminder_send(due: DueReminder) -> bool:
    recipients = sorted(
        EFContractUser.objects.filter(
            contract=due.contract,
            level=EFContractUser.Level.SUPER,
            **_members_of_the_customer(due.contract),
        ).values_list("user__email", flat=True)
    )
    if not recipients:
        return False  # kept due: sent once the contract has a super user
    # The unique constraint decides: a second run (or a concurrent one, which waits for this
    # insert to commit) gets IntegrityError here and sends nothing. The reminder row and its
    # outbox row commit together, or neither does.
    try:
        with transaction.atomic():
            EFReminder.objects.create(
                contract=due.contract, year=due.year, reason=due.reason, recipients=recipients
            )
    except IntegrityError:
        return False
    contract_year = due.contract.year(due.year)
    assert contract_year is not None  # reminders_due only yields the contract's own years
    reminder_email_queue(
        contract=due.contract,
        year=contract_year,
        reason=due.reason,
        days_left=due.days_left,
        to=recipients,
    )
    _audit(
        "ef.reminder_sent",
        contract=due.contract,
        actor=None,
        details={"year": due.year, "reason": due.reason, "to": recipients},
    )
    return True
