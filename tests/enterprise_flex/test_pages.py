"""The contract list, the contract page, sites, and the license catalog (My licenses' list)."""

from __future__ import annotations

import csv
import io
import re
import secrets

import pytest
from django.urls import reverse

from enterprise_flex.models import EFSite
from enterprise_flex.services import DrawdownRequest, drawdown_create
from licensing.models import CustomField, CustomFieldValue
from portal.models import AuditEvent
from tests.enterprise_flex.factories import EFLineFactory, World, make_world
from tests.licensing.factories import LicenseFactory

pytestmark = pytest.mark.django_db


def draw(world: World, quantity: int, actor, line=None):  # type: ignore[no-untyped-def]
    return drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(
            line_id=(line or world.line).pk, site_id=world.site.pk, quantity=quantity
        ),
        actor=actor,
        token=secrets.token_urlsafe(8),
    )


def test_the_contract_list_shows_each_contract_with_the_users_level(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    client.force_login(world.configuration_user)
    response = client.get(reverse("ef-contracts"))
    table = response.content.decode().split('data-testid="ef-contracts"')[1]
    assert world.contract.number in table and "Configuration user" in table
    assert world.sibling.number not in table and world.other_contract.number not in table


def test_a_user_on_no_contract_reads_what_ef_is_and_whom_to_ask(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    client.force_login(world.member)
    content = client.get(reverse("ef-contracts")).content.decode()
    assert 'data-testid="ef-none"' in content
    assert "ask its super user" in content and "account manager" in content


def test_dashboard_and_top_bar_link_to_enterprise_flexible(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    client.force_login(world.member)
    content = client.get(reverse("dashboard")).content.decode()
    url = reverse("ef-contracts")
    assert content.count(f'href="{url}"') == 2  # the nav item and the dashboard card
    assert "Enterprise Flexible" in content


def test_the_contract_page_summary_and_chart(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=10, overage_allowed=True)
    second = EFLineFactory(contract=world.contract, committed_quantity=4)
    draw(world, 13, world.contract_user)
    draw(world, 1, world.contract_user, line=second)
    client.force_login(world.contract_user)
    response = client.get(reverse("ef-contract", args=[world.contract.number]))
    content = response.content.decode()
    summary = content.split('data-testid="ef-summary"')[1].split("</table>")[0]
    product = world.line.version.product.name
    row = summary.split(product)[1].split("</tr>")[0]
    cells = [c.split("</td>")[0].strip() for c in re.split(r'<td class="text-end"[^>]*>', row)[1:5]]
    assert cells[:3] == ["10", "13", "0"] and "3" in cells[3]
    chart = content.split('data-testid="ef-summary-chart"')[1].split("</figure>")[0]
    assert chart.count("<svg") == 1 and "<script" not in chart and product in chart
    assert "Main site" in content and world.super_user.email in content
    assert world.contract.grey_year_end.isoformat() in content


def test_sites_are_managed_by_configuration_users(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    n = world.contract.number
    client.force_login(world.contract_user)
    assert client.post(reverse("ef-site-create", args=[n]), {"name": "X"}).status_code == 403
    client.force_login(world.configuration_user)
    response = client.post(
        reverse("ef-site-create", args=[n]),
        {"name": "Plant 2", "address": "Rua 1", "contact_email": "p2@acme.example"},
    )
    assert response.status_code == 302
    site = EFSite.objects.get(contract=world.contract, name="Plant 2")
    response = client.post(reverse("ef-site-create", args=[n]), {"name": "plant 2"})
    assert response.status_code == 400 and "already has a site called" in response.content.decode()
    response = client.post(
        reverse("ef-site-create", args=[n]), {"name": "", "contact_email": "nope"}
    )
    assert response.status_code == 400
    response = client.post(
        reverse("ef-site-edit", args=[n, site.pk]),
        {"name": "Plant Two", "contact_email": "p2@acme.example"},  # "active" unchecked
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.name == "Plant Two" and not site.active
    assert AuditEvent.objects.filter(action__in=["ef.site_added", "ef.site_changed"]).count() == 2


def test_the_catalog_lists_the_contract_licenses_by_level_with_my_licenses_filters(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=50)
    mine = draw(world, 1, world.contract_user)
    theirs = draw(world, 2, world.configuration_user)
    LicenseFactory(owner=world.contract.organization)  # the organization's, not the contract's
    url = reverse("ef-licenses", args=[world.contract.number])
    client.force_login(world.contract_user)
    response = client.get(url)
    assert [row["license"] for row in response.context["rows"]] == [mine.license]
    client.force_login(world.configuration_user)
    response = client.get(url)
    assert {row["license"] for row in response.context["rows"]} == {mine.license, theirs.license}
    # The same filters and sorting as My licenses, and its reset link points here.
    response = client.get(url, {"q": theirs.license.key[-5:], "sort": "quantity"})
    assert [row["license"] for row in response.context["rows"]] == [theirs.license]
    content = response.content.decode()
    assert f'href="{url}"' in content and "Search and filter" in content


def test_the_catalog_exports_csv_with_custom_values(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=50)
    drawdown = draw(world, 3, world.contract_user)
    field = CustomField.objects.create(organization=world.contract.organization, name="Cost center")
    CustomFieldValue.objects.create(license=drawdown.license, field=field, value="CC-7")
    LicenseFactory(owner=world.contract.organization)
    client.force_login(world.super_user)
    response = client.get(reverse("ef-licenses-export", args=[world.contract.number]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["key"], r["quantity"], r["source"], r["Cost center"]) for r in rows] == [
        (drawdown.license.key, "3", "ef_drawdown", "CC-7")
    ]
    assert world.contract.number.lower() in response["Content-Disposition"]
