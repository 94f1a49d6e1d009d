"""Contracts, lines and contract users are created through the services, as staff create them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import factory
from django.test import Client
from django.urls import reverse

from enterprise_flex.models import EFContract, EFContractUser, EFLine, EFSite
from enterprise_flex.services import SITE_FIELDS, contract_create, contract_user_set, line_add
from licensing.models import add_months
from portal.models import Membership, User
from tests.licensing.factories import ProductVersionFactory
from tests.licensing.wizard import instance_token
from tests.portal.factories import MembershipFactory, OrganizationFactory


class EFContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EFContract

    organization = factory.SubFactory(OrganizationFactory)
    # Deployment period started a month ago, three years long.
    period_start = factory.LazyFunction(lambda: date.today() - timedelta(days=30))
    period_end = factory.LazyAttribute(lambda o: add_months(o.period_start, 36) - timedelta(days=1))
    grey_year_end = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        return contract_create(actor=kwargs.pop("actor", None), **kwargs)


class EFLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EFLine

    contract = factory.SubFactory(EFContractFactory)
    version = factory.SubFactory(ProductVersionFactory)
    committed_quantity = 100
    unit_value = Decimal("10.00")
    currency = "USD"
    overage_allowed = False

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        return line_add(actor=None, **kwargs)


def contract_member(contract: EFContract, level: str | None, **user: Any) -> User:
    """A member of the contract's organization, on the contract at `level` (None: not on it)."""
    membership = MembershipFactory(
        organization=contract.organization, role=Membership.Role.MEMBER, **user
    )
    if level is not None:
        contract_user_set(contract=contract, user=membership.user, level=level, actor=None)
    return membership.user


@dataclass
class World:
    contract: EFContract
    line: EFLine
    site: EFSite
    super_user: User
    configuration_user: User
    contract_user: User
    member: User  # of the organization, on no contract
    stranger: User  # of another organization
    other_contract: EFContract  # of another organization
    sibling: EFContract  # of the same organization, none of the above on it

    def user(self, who: str) -> User:
        return getattr(self, who)  # type: ignore[no-any-return]


def make_world(**line: Any) -> World:
    contract = EFContractFactory()
    return World(
        contract=contract,
        line=EFLineFactory(contract=contract, **line),
        site=contract.sites.get(),
        super_user=contract_member(contract, EFContractUser.Level.SUPER),
        configuration_user=contract_member(contract, EFContractUser.Level.CONFIGURATION),
        contract_user=contract_member(contract, EFContractUser.Level.CONTRACT),
        member=contract_member(contract, None),
        stranger=MembershipFactory().user,
        other_contract=EFLineFactory().contract,
        sibling=EFLineFactory(
            contract=EFContractFactory(organization=contract.organization)
        ).contract,
    )


PREFIX = "ef_drawdown_{number}"


def post_step(
    client: Client,
    contract: EFContract,
    step: str,
    data: dict[str, Any] | None = None,
    *,
    token: str | None = None,
) -> Any:
    prefix = PREFIX.format(number=contract.number)
    payload = {
        f"{prefix}-current_step": step,
        # What the page of the session's wizard instance carries (licensing.wizard.PortalWizard).
        f"{prefix}-instance": instance_token(client, prefix) if token is None else token,
    }
    for name, value in (data or {}).items():
        payload[f"{step}-{name}"] = value
    return client.post(reverse("ef-drawdown", kwargs={"number": contract.number}), payload)


def draw_down(
    client: Client,
    contract: EFContract,
    *,
    line: EFLine,
    site: EFSite,
    quantity: Any,
    host_id: str | None = None,
    confirm: bool = True,
) -> Any:
    """Walks the drawdown wizard; returns the last response (the redirect after Confirm)."""
    response = client.get(reverse("ef-drawdown", kwargs={"number": contract.number}))
    assert response.status_code == 200, response
    response = post_step(client, contract, "line", {"line": line.pk})
    assert response.context["wizard"]["steps"].current == "quantity", _errors(response)
    data: dict[str, Any] = {"quantity": quantity, "site": site.pk}
    if host_id is not None:
        data["host_id"] = host_id
    response = post_step(client, contract, "quantity", data)
    if response.status_code != 200 or response.context["wizard"]["steps"].current != "confirm":
        return response
    if not confirm:
        return response
    return post_step(client, contract, "confirm")


def _errors(response: Any) -> Any:
    return response.context["wizard"]["form"].errors


def management(prefix: str, total: int, initial: int = 0) -> dict[str, Any]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def admin_change_data(contract: EFContract, **overrides: Any) -> dict[str, Any]:
    """What admin's contract change page posts back unchanged: the contract, its lines, sites
    and users as they are stored (`overrides` replace fields)."""
    lines = list(contract.lines.order_by("pk"))
    sites = list(contract.sites.order_by("pk"))
    users = list(contract.users.order_by("pk"))
    data: dict[str, Any] = {
        "period_start": contract.period_start.isoformat(),
        "period_end": contract.period_end.isoformat(),
        "grey_year_end": contract.grey_year_end.isoformat(),
        "status": contract.status,
        **management("lines", len(lines), len(lines)),
        **management("sites", len(sites), len(sites)),
        **management("users", len(users), len(users)),
    }
    for i, line in enumerate(lines):
        data |= {
            f"lines-{i}-id": line.pk,
            f"lines-{i}-contract": contract.pk,
            f"lines-{i}-version": line.version_id,
            f"lines-{i}-committed_quantity": line.committed_quantity,
            f"lines-{i}-unit_value": line.unit_value,
            f"lines-{i}-currency": line.currency,
        }
        if line.overage_allowed:
            data[f"lines-{i}-overage_allowed"] = "on"
    for i, site in enumerate(sites):
        data |= {f"sites-{i}-id": site.pk, f"sites-{i}-contract": contract.pk}
        data |= {f"sites-{i}-{name}": getattr(site, name) for name in SITE_FIELDS}
        data[f"sites-{i}-active"] = "on"
    for i, row in enumerate(users):
        data |= {
            f"users-{i}-id": row.pk,
            f"users-{i}-contract": contract.pk,
            f"users-{i}-user": row.user_id,
            f"users-{i}-level": row.level,
        }
    return data | overrides
