"""Staff create and amend contracts in admin; every save goes through the services (audited),
and a refused change is a form error, not a 500."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.urls import reverse

from enterprise_flex.models import EFContract, EFContractUser, EFLine, EFSite
from enterprise_flex.services import DrawdownRequest, drawdown_create
from portal.models import AuditEvent, Membership, User
from tests.enterprise_flex.factories import admin_change_data, make_world, management
from tests.licensing.factories import ProductVersionFactory
from tests.portal.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client) -> User:  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser(email="staff@example.com", password="x")
    client.force_login(user)
    return user


def test_add_a_contract_with_a_line(client, staff) -> None:  # type: ignore[no-untyped-def]
    customer = OrganizationFactory()
    version = ProductVersionFactory()
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_add"),
        {
            "organization": customer.pk,
            "period_start": "2026-01-01",
            "period_end": "2028-12-31",
            "grey_year_end": "",
            "status": "active",
            **management("lines", 1),
            "lines-0-version": version.pk,
            "lines-0-committed_quantity": "250",
            "lines-0-unit_value": "12.50",
            "lines-0-currency": "usd",
            "lines-0-overage_allowed": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    contract = EFContract.objects.get()
    assert contract.grey_year_end == date(2029, 12, 31)
    assert contract.sites.get().name == "Main site"
    line = contract.lines.get()
    assert (line.committed_quantity, line.currency, line.overage_allowed) == (250, "USD", True)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"ef.contract_created", "ef.line_added"} <= actions
    assert all(e.actor == staff for e in AuditEvent.objects.filter(action__startswith="ef."))


def test_bad_dates_and_partner_customers_are_form_errors(client, staff) -> None:  # type: ignore[no-untyped-def]
    url = reverse("admin:enterprise_flex_efcontract_add")
    base = {"status": "active", **management("lines", 0)}
    response = client.post(
        url,
        {**base, "organization": OrganizationFactory().pk, "period_start": "2026-02-01",
         "period_end": "2026-01-01"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "must end on or after" in response.content.decode()
    partner = OrganizationFactory(kind="partner")
    response = client.post(
        url,
        {**base, "organization": partner.pk, "period_start": "2026-01-01",
         "period_end": "2026-12-31"},
    )  # fmt: skip
    assert (
        response.status_code == 200 and "organization" in response.context["adminform"].form.errors
    )
    assert not EFContract.objects.exists()


def test_amend_a_line_site_and_users_through_the_services(client, staff) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=10)
    contract = world.contract
    url = reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk])
    newcomer = MembershipFactory(organization=contract.organization, role=Membership.Role.MEMBER)
    data = admin_change_data(contract)
    line_index = next(i for i in range(5) if data.get(f"lines-{i}-id") == world.line.pk)
    data[f"lines-{line_index}-committed_quantity"] = "40"
    data["sites-0-contact_email"] = "main@acme.example"
    total = int(data["users-TOTAL_FORMS"])
    data |= {"users-TOTAL_FORMS": str(total + 1), f"users-{total}-user": newcomer.user.pk,
             f"users-{total}-level": "contract"}  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 302, _errors(response)
    world.line.refresh_from_db()
    assert world.line.committed_quantity == 40
    assert (
        EFSite.objects.get(contract=contract, name="Main site").contact_email == "main@acme.example"
    )
    assert EFContractUser.objects.get(contract=contract, user=newcomer.user).level == "contract"
    actions = list(AuditEvent.objects.filter(actor=staff).values_list("action", flat=True))
    assert sorted(actions) == ["ef.line_changed", "ef.site_changed", "ef.user_added"]


def test_committed_below_drawn_down_is_a_form_error_in_admin(client, staff) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=10)
    drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=6),
        actor=world.contract_user,
        token="t",
    )
    data = admin_change_data(world.contract)
    index = next(i for i in range(5) if data.get(f"lines-{i}-id") == world.line.pk)
    data[f"lines-{index}-committed_quantity"] = "5"
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_change", args=[world.contract.pk]), data
    )
    assert response.status_code == 200
    assert "6 are already drawn down" in response.content.decode()
    world.line.refresh_from_db()
    assert world.line.committed_quantity == 10
    # Deleting the line is refused the same way.
    data[f"lines-{index}-committed_quantity"] = "10"
    data[f"lines-{index}-DELETE"] = "on"
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_change", args=[world.contract.pk]), data
    )
    assert response.status_code == 200
    assert "protected related objects" in response.content.decode()
    assert EFLine.objects.filter(pk=world.line.pk).exists()


def test_users_outside_the_customer_and_the_last_super_user_in_admin(client, staff) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    url = reverse("admin:enterprise_flex_efcontract_change", args=[world.contract.pk])
    data = admin_change_data(world.contract)
    total = int(data["users-TOTAL_FORMS"])
    data |= {"users-TOTAL_FORMS": str(total + 1), f"users-{total}-user": world.stranger.pk,
             f"users-{total}-level": "super"}  # fmt: skip
    response = client.post(url, data)
    assert response.status_code == 200 and "is not a user of" in response.content.decode()
    data = admin_change_data(world.contract)
    for i in range(total):
        if data[f"users-{i}-level"] == "super":
            data[f"users-{i}-level"] = "contract"
    response = client.post(url, data)
    assert response.status_code == 200 and "at least one super user" in response.content.decode()
    assert world.contract.users.filter(level="super").count() == 1


def test_drawdowns_and_reports_are_read_only_in_admin(client, staff) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    drawdown = drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=1),
        actor=world.contract_user,
        token="t",
    )
    assert client.get(reverse("admin:enterprise_flex_efdrawdown_changelist")).status_code == 200
    page = client.get(reverse("admin:enterprise_flex_efdrawdown_change", args=[drawdown.pk]))
    assert (
        page.status_code == 200 and 'type="submit"' not in page.content.decode().split("<form")[-1]
    )
    assert client.get(reverse("admin:enterprise_flex_efdrawdown_add")).status_code == 403
    for name in ("efdeploymentreport", "efinvitation", "efreminder", "efcontract"):
        assert client.get(reverse(f"admin:enterprise_flex_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:enterprise_flex_efcontract_add")).status_code == 200
    change = reverse("admin:enterprise_flex_efcontract_change", args=[world.contract.pk])
    assert client.get(change).status_code == 200


def _errors(response: Any) -> Any:
    context = response.context
    if context is None:
        return response
    return (
        [context["adminform"].form.errors]
        + [formset.errors for formset in context.get("inline_admin_formsets", [])]
        + [f.formset.non_form_errors() for f in context.get("inline_admin_formsets", [])]
    )


def test_replacing_the_user_of_a_row_takes_the_old_user_off_the_contract(client, staff) -> None:  # type: ignore[no-untyped-def]
    # The form had already put the new user on the row's instance, so the old one was never
    # removed: they kept their access while admin said the row was changed.
    world = make_world()
    contract = world.contract
    url = reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk])
    newcomer = MembershipFactory(organization=contract.organization, role=Membership.Role.MEMBER)
    data = admin_change_data(contract)
    index = next(i for i in range(5) if data.get(f"users-{i}-user") == world.contract_user.pk)
    data[f"users-{index}-user"] = newcomer.user.pk
    response = client.post(url, data)
    assert response.status_code == 302, _errors(response)
    levels = dict(contract.users.values_list("user__email", "level"))
    assert world.contract_user.email not in levels
    assert levels[newcomer.user.email] == "contract"
    actions = list(AuditEvent.objects.filter(actor=staff).values_list("action", flat=True))
    assert sorted(actions) == ["ef.user_added", "ef.user_removed"]


def test_replacing_the_only_super_user_keeps_a_super_user(client, staff) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    contract = world.contract
    url = reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk])
    newcomer = MembershipFactory(organization=contract.organization, role=Membership.Role.MEMBER)
    data = admin_change_data(contract)
    index = next(i for i in range(5) if data.get(f"users-{i}-user") == world.super_user.pk)
    data[f"users-{index}-user"] = newcomer.user.pk
    response = client.post(url, data)
    assert response.status_code == 302, _errors(response)
    supers = list(contract.users.filter(level="super").values_list("user__email", flat=True))
    assert supers == [newcomer.user.email]


def test_removing_the_super_user_while_making_another_one_in_one_save(client, staff) -> None:  # type: ignore[no-untyped-def]
    # The removal was applied first and refused as the last super user's: a 500.
    world = make_world()
    contract = world.contract
    url = reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk])
    data = admin_change_data(contract)
    rows = {data[f"users-{i}-user"]: i for i in range(int(data["users-TOTAL_FORMS"]))}
    data[f"users-{rows[world.super_user.pk]}-DELETE"] = "on"
    data[f"users-{rows[world.contract_user.pk]}-level"] = "super"
    response = client.post(url, data)
    assert response.status_code == 302, _errors(response)
    supers = list(contract.users.filter(level="super").values_list("user__email", flat=True))
    assert supers == [world.contract_user.email]


def test_two_rows_that_swap_users_swap_their_levels(client, staff) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    contract = world.contract
    url = reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk])
    data = admin_change_data(contract)
    rows = {data[f"users-{i}-user"]: i for i in range(int(data["users-TOTAL_FORMS"]))}
    first, second = rows[world.configuration_user.pk], rows[world.contract_user.pk]
    data[f"users-{first}-user"], data[f"users-{second}-user"] = (
        world.contract_user.pk,
        world.configuration_user.pk,
    )
    response = client.post(url, data)
    assert response.status_code == 302, _errors(response)
    levels = dict(contract.users.values_list("user__email", "level"))
    assert levels[world.contract_user.email] == "configuration"
    assert levels[world.configuration_user.email] == "contract"
    assert levels[world.super_user.email] == "super"


def test_changing_the_version_of_a_line_is_a_form_error(client, staff) -> None:  # type: ignore[no-untyped-def]
    # line_update takes terms only: the new version was dropped while admin said "changed".
    world = make_world()
    url = reverse("admin:enterprise_flex_efcontract_change", args=[world.contract.pk])
    data = admin_change_data(world.contract)
    index = next(i for i in range(5) if data.get(f"lines-{i}-id") == world.line.pk)
    data[f"lines-{index}-version"] = ProductVersionFactory().pk
    response = client.post(url, data)
    assert response.status_code == 200
    assert "product version cannot change" in response.content.decode()
    before = world.line.version_id
    world.line.refresh_from_db()
    assert world.line.version_id == before


def test_an_emptied_grey_year_end_is_one_year_after_the_period(client, staff) -> None:  # type: ignore[no-untyped-def]
    # The field says "Empty: one year after the deployment period", as on the add page; on the
    # change page an empty value reached the database as NULL: a 500.
    world = make_world()
    contract = world.contract
    data = admin_change_data(contract, grey_year_end="", period_end="2030-06-30")
    response = client.post(
        reverse("admin:enterprise_flex_efcontract_change", args=[contract.pk]), data
    )
    assert response.status_code == 302, _errors(response)
    contract.refresh_from_db()
    assert contract.period_end == date(2030, 6, 30)
    assert contract.grey_year_end == date(2031, 6, 30)
