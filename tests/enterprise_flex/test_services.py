"""The services: contracts and their Main site, line rules, drawdowns through the one mint,
overage, the period and grey-year rules, and the audit trail."""

from __future__ import annotations

import secrets
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum

from enterprise_flex.models import EFContract, EFDrawdown, EFLine
from enterprise_flex.services import (
    DrawdownRefused,
    DrawdownRequest,
    EFError,
    contract_create,
    contract_update,
    drawdown_create,
    line_add,
    line_delete,
    line_update,
    site_create,
    site_update,
)
from licensing.models import License
from portal.models import AuditEvent, Organization, OutboundEmail
from tests.enterprise_flex.factories import EFContractFactory, EFLineFactory, make_world
from tests.licensing.factories import ProductFactory, ProductVersionFactory
from tests.portal.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


def draw(world, quantity: int, *, line=None, site=None, actor=None, token=None, today=None):  # type: ignore[no-untyped-def]
    return drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(
            line_id=(line or world.line).pk, site_id=(site or world.site).pk, quantity=quantity
        ),
        actor=actor or world.contract_user,
        token=token or secrets.token_urlsafe(16),
        today=today,
    )


# -- contracts ---------------------------------------------------------------------------------


def test_a_new_contract_has_a_main_site_from_the_customer_address_and_its_super_user() -> None:
    admin = MembershipFactory(role="admin", user__full_name="Ana Admin")
    organization = admin.organization
    contract = contract_create(
        organization=organization,
        period_start=date(2026, 1, 1),
        period_end=date(2028, 12, 31),
        actor=None,
        super_user=admin.user,
    )
    assert contract.number.startswith("EF-") and len(contract.number) == 11
    assert contract.grey_year_end == date(2029, 12, 31)
    (site,) = contract.sites.all()
    assert site.name == "Main site" and site.address == organization.address
    assert site.country == organization.country
    assert site.contact_email == admin.user.email and site.contact_name == "Ana Admin"
    assert contract.users.get().level == "super"
    actions = list(AuditEvent.objects.order_by("created_at").values_list("action", flat=True))
    assert actions[-2:] == ["ef.contract_created", "ef.user_added"]


def test_contract_numbers_are_unique() -> None:
    numbers = {EFContractFactory().number for _ in range(20)}
    assert len(numbers) == 20


def test_partners_do_not_sign_contracts_and_dates_must_be_ordered() -> None:
    partner = OrganizationFactory(kind=Organization.Kind.PARTNER)
    with pytest.raises(EFError, match="not a customer"):
        contract_create(
            organization=partner,
            period_start=date(2026, 1, 1),
            period_end=date(2027, 1, 1),
            actor=None,
        )
    customer = OrganizationFactory()
    with pytest.raises(EFError, match="end on or after"):
        contract_create(
            organization=customer,
            period_start=date(2026, 1, 2),
            period_end=date(2026, 1, 1),
            actor=None,
        )
    with pytest.raises(EFError, match="grey year must end after"):
        contract_create(
            organization=customer,
            period_start=date(2026, 1, 1),
            period_end=date(2027, 1, 1),
            grey_year_end=date(2027, 1, 1),
            actor=None,
        )
    assert not EFContract.objects.exists()


def test_the_database_refuses_a_grey_year_before_the_period_end() -> None:
    contract = EFContractFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        EFContract.objects.filter(pk=contract.pk).update(grey_year_end=contract.period_end)


def test_contract_update_records_what_changed() -> None:
    contract = EFContractFactory()
    contract_update(
        contract=contract,
        actor=None,
        period_start=contract.period_start,
        period_end=contract.period_end,
        grey_year_end=contract.grey_year_end,
        status="suspended",
    )
    contract.refresh_from_db()
    assert contract.status == "suspended"
    event = AuditEvent.objects.get(action="ef.contract_changed")
    assert event.details["changes"] == {"status": {"from": "active", "to": "suspended"}}


# -- lines -------------------------------------------------------------------------------------


def test_committed_quantity_below_what_is_drawn_down_is_refused() -> None:
    world = make_world(committed_quantity=10)
    draw(world, 7)
    with pytest.raises(EFError, match="7 are already drawn down"):
        line_update(
            line=world.line,
            actor=None,
            committed_quantity=6,
            unit_value=Decimal(1),
            currency="USD",
            overage_allowed=False,
        )
    world.line.refresh_from_db()
    assert world.line.committed_quantity == 10
    line_update(
        line=world.line,
        actor=None,
        committed_quantity=7,
        unit_value=Decimal("12.5"),
        currency="eur",
        overage_allowed=False,
    )
    world.line.refresh_from_db()
    assert (world.line.committed_quantity, world.line.currency) == (7, "EUR")
    assert AuditEvent.objects.filter(action="ef.line_changed").count() == 1


def test_a_line_in_overage_keeps_its_commitment_above_what_is_drawn_down() -> None:
    world = make_world(committed_quantity=5, overage_allowed=True)
    draw(world, 8)
    terms = {"unit_value": Decimal(1), "currency": "USD", "actor": None}
    for committed, overage in ((5, False), (7, True)):
        with pytest.raises(EFError, match="8 are already drawn down"):
            line_update(
                line=world.line, committed_quantity=committed, overage_allowed=overage, **terms
            )
    # Raising the commitment to cover the drawdowns allows switching overage off.
    line_update(line=world.line, committed_quantity=8, overage_allowed=False, **terms)
    world.line.refresh_from_db()
    assert world.line.remaining_quantity == 0 and not world.line.overage_allowed


def test_a_line_with_drawdowns_cannot_be_removed_and_one_without_can() -> None:
    world = make_world()
    draw(world, 1)
    with pytest.raises(EFError, match="cannot be removed"):
        line_delete(line=world.line, actor=None)
    spare = EFLineFactory(contract=world.contract)
    line_delete(line=spare, actor=None)
    assert not EFLine.objects.filter(pk=spare.pk).exists()


def test_a_version_appears_once_per_contract_and_commitments_are_positive() -> None:
    world = make_world()
    with pytest.raises(EFError, match="already on this contract"):
        line_add(
            contract=world.contract,
            version=world.line.version,
            committed_quantity=5,
            unit_value=Decimal(1),
            actor=None,
        )
    for committed in (0, -3, 10**9):
        with pytest.raises(EFError, match="committed quantity"):
            line_add(
                contract=world.contract,
                version=ProductVersionFactory(),
                committed_quantity=committed,
                unit_value=Decimal(1),
                actor=None,
            )


# -- drawdowns ---------------------------------------------------------------------------------


def test_a_drawdown_mints_one_license_through_license_issue() -> None:
    world = make_world(committed_quantity=50)
    world.site.contact_email = "site.contact@acme.example"
    world.site.save()
    drawdown = draw(world, 12)
    license = drawdown.license
    assert license.source == License.Source.EF_DRAWDOWN
    assert license.source_ref == world.contract.number
    assert license.owner == world.contract.organization
    assert license.quantity == 12 and license.version == world.line.version
    assert license.maintenance_start == date.today()
    assert license.maintenance_end == world.contract.grey_year_end
    assert license.issued_by == world.contract_user
    assert license.registration.technical_email == "site.contact@acme.example"
    world.line.refresh_from_db()
    assert world.line.drawn_quantity == 12 and drawdown.overage_quantity == 0
    # One issue event (the mint's) and one drawdown event; one email to user and site contact.
    assert (
        AuditEvent.objects.filter(action="license.issued", object_id=str(license.pk)).count() == 1
    )
    event = AuditEvent.objects.get(action="ef.drawdown")
    assert event.details["quantity"] == 12 and event.actor == world.contract_user
    emails = OutboundEmail.objects.filter(template="license_issued")
    assert sorted(a for e in emails for a in e.to) == sorted(
        ["site.contact@acme.example", world.contract_user.email]
    )
    assert all(e.attachments[0]["filename"] == license.file_name for e in emails)
    # Not word for word a Get-a-key email: it names the contract and the site.
    drawn = (
        f"It was drawn down from Enterprise Flexible contract {world.contract.number} "
        f"for the site {world.site.name}."
    )
    assert all(drawn in e.body_text and drawn in e.body_html for e in emails)


def test_beyond_the_commitment_is_overage_when_the_line_allows_it() -> None:
    world = make_world(committed_quantity=10, overage_allowed=True)
    first = draw(world, 8)
    second = draw(world, 5)
    third = draw(world, 4)
    assert [first.overage_quantity, second.overage_quantity, third.overage_quantity] == [0, 3, 4]
    world.line.refresh_from_db()
    assert world.line.drawn_quantity == 17 and world.line.overage_quantity == 7
    assert world.line.remaining_quantity == 0


def test_beyond_the_commitment_is_refused_when_the_line_does_not_allow_it() -> None:
    world = make_world(committed_quantity=10)
    draw(world, 8)
    with pytest.raises(DrawdownRefused, match="Only 2 are left"):
        draw(world, 3)
    draw(world, 2)
    with pytest.raises(DrawdownRefused, match="Everything committed"):
        draw(world, 1)
    world.line.refresh_from_db()
    assert world.line.drawn_quantity == 10
    assert EFDrawdown.objects.count() == License.objects.count() == 2


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001])
def test_quantities_out_of_range_are_refused(quantity: int) -> None:
    world = make_world(overage_allowed=True)
    with pytest.raises(DrawdownRefused, match="from 1 to 1,000,000"):
        draw(world, quantity)
    assert not License.objects.exists()


@pytest.mark.parametrize(
    ("today", "message"),
    [
        (-1, "keys can be drawn down from"),
        ("grey", "Maintenance continues until"),
        ("ended", "no more keys can be drawn down"),
    ],
)
def test_outside_the_deployment_period_a_drawdown_is_refused_with_the_dates(today, message) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    contract = world.contract
    day = {
        -1: contract.period_start - timedelta(days=1),
        "grey": contract.period_end + timedelta(days=1),
        "ended": contract.grey_year_end + timedelta(days=1),
    }[today]
    with pytest.raises(DrawdownRefused, match=message) as refused:
        draw(world, 1, today=day)
    assert contract.period_end.isoformat() in str(
        refused.value
    ) or contract.grey_year_end.isoformat() in str(refused.value)
    assert not License.objects.exists()


def test_the_last_day_of_the_period_still_draws_down_with_maintenance_to_the_grey_year_end() -> (
    None
):
    world = make_world()
    drawdown = draw(world, 1, today=world.contract.period_end)
    assert drawdown.license.maintenance_start == world.contract.period_end
    assert drawdown.license.maintenance_end == world.contract.grey_year_end


def test_a_suspended_contract_refuses_drawdowns() -> None:
    world = make_world()
    EFContract.objects.filter(pk=world.contract.pk).update(status="suspended")
    with pytest.raises(DrawdownRefused, match="is suspended"):
        draw(world, 1)


def test_a_line_or_site_of_another_contract_is_refused() -> None:
    world = make_world()
    other_line = world.other_contract.lines.get()
    other_site = world.other_contract.sites.get()
    with pytest.raises(DrawdownRefused, match="product of this contract"):
        draw(world, 1, line=other_line)
    with pytest.raises(DrawdownRefused, match="active sites"):
        draw(world, 1, site=other_site)
    inactive = site_create(contract=world.contract, values={"name": "Old plant"}, actor=None)
    site_update(site=inactive, values={"name": "Old plant"}, active=False, actor=None)
    with pytest.raises(DrawdownRefused, match="active sites"):
        draw(world, 1, site=inactive)
    assert not License.objects.exists()
    other_line.refresh_from_db()
    assert other_line.drawn_quantity == 0


def test_the_same_token_returns_the_first_drawdown() -> None:
    world = make_world()
    first = draw(world, 3, token="tok-1")
    again = draw(world, 3, token="tok-1")
    assert again.pk == first.pk
    assert License.objects.count() == 1
    world.line.refresh_from_db()
    assert world.line.drawn_quantity == 3


def test_node_locked_products_need_a_host_id() -> None:
    world = make_world(version=ProductVersionFactory(product=ProductFactory(node_locked=True)))
    with pytest.raises(DrawdownRefused, match="node-locked"):
        draw(world, 1)
    drawdown = drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(
            line_id=world.line.pk, site_id=world.site.pk, quantity=1, host_id=" HOST-9 "
        ),
        actor=world.contract_user,
        token="t",
    )
    assert drawdown.license.host_id == "HOST-9"


def test_the_line_figure_is_the_sum_of_its_drawdowns() -> None:
    world = make_world(committed_quantity=100, overage_allowed=True)
    for quantity in (1, 7, 30, 70, 2):
        draw(world, quantity)
    world.line.refresh_from_db()
    total = EFDrawdown.objects.filter(line=world.line).aggregate(total=Sum("quantity"))["total"]
    assert world.line.drawn_quantity == total == 110
    overage = EFDrawdown.objects.filter(line=world.line).aggregate(o=Sum("overage_quantity"))["o"]
    assert overage == world.line.overage_quantity == 10


def test_the_database_refuses_an_over_drawn_line_without_overage() -> None:
    world = make_world(committed_quantity=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        EFLine.objects.filter(pk=world.line.pk).update(drawn_quantity=6)
    EFLine.objects.filter(pk=world.line.pk).update(overage_allowed=True, drawn_quantity=6)


# -- sites -------------------------------------------------------------------------------------


def test_site_names_are_unique_per_contract_whatever_the_case() -> None:
    world = make_world()
    site_create(contract=world.contract, values={"name": "Plant 2"}, actor=None)
    with pytest.raises(EFError, match="already has a site called"):
        site_create(contract=world.contract, values={"name": " plant 2 "}, actor=None)
    with pytest.raises(EFError, match="Give the site a name"):
        site_create(contract=world.contract, values={"name": "  "}, actor=None)
    site_create(contract=world.other_contract, values={"name": "Plant 2"}, actor=None)


def test_editing_a_site_keeps_the_registration_of_keys_drawn_down_before() -> None:
    world = make_world()
    world.site.contact_email = "old@acme.example"
    world.site.save()
    before = draw(world, 1)
    values = {"name": world.site.name, "contact_email": "NEW@acme.example"}
    site_update(site=world.site, values=values, active=True, actor=world.configuration_user)
    after = draw(world, 1)
    assert before.license.registration.technical_email == "old@acme.example"
    assert after.license.registration.technical_email == "new@acme.example"
    event = AuditEvent.objects.get(action="ef.site_changed")
    assert event.details["changes"]["contact_email"] == {
        "from": "old@acme.example",
        "to": "new@acme.example",
    }
