"""Who reaches which Enterprise Flexible page: the level-by-action table of portal.policy, applied
by every view; objects outside the actor's reach are a 404, actions above the level a 403."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from enterprise_flex.models import EFContractUser, EFDeploymentReport
from enterprise_flex.selectors import contract_for, contracts_for
from enterprise_flex.services import DrawdownRequest, drawdown_create, invitation_create
from enterprise_flex.views import _reach
from portal.models import Organization
from portal.policy import (
    EF_LEVEL_ACTIONS,
    Action,
    OrganizationAccess,
    ef_delegated_level,
    ef_level_allows,
)
from tests.enterprise_flex.factories import World, make_world
from tests.portal.factories import (
    DelegationFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# "delegated": a channel partner acting for the customer with the obtain-keys scope.
LEVELS = ["delegated", "contract", "configuration", "super"]
ACTIONS = sorted(set().union(*EF_LEVEL_ACTIONS.values()))

# The table in portal.policy, spelled out once more so that a change to it is deliberate.
EXPECTED = {
    "view_contract": {"delegated", "contract", "configuration", "super"},
    "draw_down": {"delegated", "contract", "configuration", "super"},
    "view_own_drawdowns": {"delegated", "contract", "configuration", "super"},
    "declare_deployment": {"contract", "configuration", "super"},
    "view_all_drawdowns": {"configuration", "super"},
    "manage_sites": {"configuration", "super"},
    "view_true_up": {"configuration", "super"},
    "view_values": {"super"},
    "run_reports": {"super"},
    "submit_report": {"super"},
    "manage_users": {"super"},
}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("level", LEVELS)
def test_level_action_table(level: str, action: str) -> None:
    assert ef_level_allows(level, action) is (level in EXPECTED[action])


def test_unknown_levels_and_actions_allow_nothing() -> None:
    assert set(EXPECTED) == set(ACTIONS)
    assert not ef_level_allows(None, "view_contract")
    assert not ef_level_allows("owner", "view_contract")
    assert not ef_level_allows("super", "delete_everything")


# -- every page, every role --------------------------------------------------------------------

ROLES = ["super_user", "configuration_user", "contract_user", "member", "stranger", "anonymous"]


@pytest.fixture
def world() -> World:
    world = make_world(committed_quantity=100)
    world.mine = drawdown_create(  # type: ignore[attr-defined]
        contract=world.contract,
        request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=1),
        actor=world.contract_user,
        token=secrets.token_urlsafe(8),
    )
    world.theirs = drawdown_create(  # type: ignore[attr-defined]
        contract=world.contract,
        request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=2),
        actor=world.configuration_user,
        token=secrets.token_urlsafe(8),
    )
    world.invitation = invitation_create(  # type: ignore[attr-defined]
        contract=world.contract, email="new@example.com", level="contract", actor=world.super_user
    )
    world.landing = invitation_create(  # type: ignore[attr-defined]
        contract=world.contract, email="other@example.com", level="super", actor=world.super_user
    )
    world.contract_user_row = EFContractUser.objects.get(  # type: ignore[attr-defined]
        contract=world.contract, user=world.contract_user
    )
    return world


def _pages(world: Any) -> list[tuple[str, str, str, dict[str, int]]]:
    """(method, url name, url, expected status per role): 0 means "redirect to log in"."""
    n = world.contract.number
    levels_ok = {"super_user": 200, "configuration_user": 200, "contract_user": 200}
    outside = {"member": 404, "stranger": 404, "anonymous": 0}
    config_ok = {"super_user": 200, "configuration_user": 200, "contract_user": 403}
    super_ok = {"super_user": 200, "configuration_user": 403, "contract_user": 403}
    super_post = {"super_user": 302, "configuration_user": 403, "contract_user": 403}
    return [
        ("get", "ef-contracts", reverse("ef-contracts"),
         {**levels_ok, "member": 200, "stranger": 200, "anonymous": 0}),
        ("get", "ef-contract", reverse("ef-contract", args=[n]), {**levels_ok, **outside}),
        ("get", "ef-drawdown", reverse("ef-drawdown", args=[n]), {**levels_ok, **outside}),
        ("get", "ef-drawdowns", reverse("ef-drawdowns", args=[n]), {**levels_ok, **outside}),
        ("get", "ef-drawdown-result (own)", reverse("ef-drawdown-result", args=[n, world.mine.pk]),
         {**levels_ok, **outside}),
        ("get", "ef-drawdown-result (another's)",
         reverse("ef-drawdown-result", args=[n, world.theirs.pk]),
         {**levels_ok, "contract_user": 404, **outside}),
        ("get", "ef-licenses", reverse("ef-licenses", args=[n]), {**levels_ok, **outside}),
        ("get", "ef-licenses-export", reverse("ef-licenses-export", args=[n]),
         {**levels_ok, **outside}),
        ("get", "ef-site-create", reverse("ef-site-create", args=[n]), {**config_ok, **outside}),
        ("get", "ef-site-edit", reverse("ef-site-edit", args=[n, world.site.pk]),
         {**config_ok, **outside}),
        ("get", "ef-users", reverse("ef-users", args=[n]), {**super_ok, **outside}),
        ("post", "ef-user-update",
         reverse("ef-user-update", args=[n, world.contract_user_row.pk]),
         {**super_post, **outside}),
        ("post", "ef-invitation-revoke",
         reverse("ef-invitation-revoke", args=[n, world.invitation.pk]),
         {**super_post, **outside}),
        ("get", "ef-report", reverse("ef-report", args=[n, 1]), {**levels_ok, **outside}),
        ("get", "ef-true-up", reverse("ef-true-up", args=[n, 1]), {**config_ok, **outside}),
        ("get", "ef-true-up-csv", reverse("ef-true-up-csv", args=[n, 1]),
         {**super_ok, **outside}),
        ("get", "ef-true-up-pdf", reverse("ef-true-up-pdf", args=[n, 1]),
         {**super_ok, **outside}),
        ("get", "ef-invitation", reverse("ef-invitation", args=[world.landing.token]),
         dict.fromkeys(ROLES, 200)),
    ]  # fmt: skip


def test_every_page_as_every_role(client, world) -> None:  # type: ignore[no-untyped-def]
    failures = []
    for role in ROLES:
        client.logout()
        if role != "anonymous":
            client.force_login(world.user(role))
        for method, name, url, expected in _pages(world):
            response = (
                client.post(url, {"level": "contract", "confirm": "1"})
                if method == "post"
                else client.get(url)
            )
            want = expected[role]
            if want == 0:
                ok = response.status_code == 302 and "/accounts/login/" in response["Location"]
            else:
                ok = response.status_code == want
            if not ok:
                failures.append(
                    f"{role} {method.upper()} {name}: {response.status_code}, want {want}"
                )
    assert not failures, "\n".join(failures)


def test_every_ef_url_pattern_is_in_the_table(world) -> None:  # type: ignore[no-untyped-def]
    from enterprise_flex.urls import urlpatterns

    covered = {name.split(" ")[0] for _m, name, _u, _e in _pages(world)}
    covered |= {"ef-report"}  # POSTs are covered by test_reports
    assert {p.name for p in urlpatterns} <= covered


# -- objects outside the actor's reach ---------------------------------------------------------


def test_a_contract_of_the_same_organization_the_user_is_not_on_is_a_404(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.super_user)
    sibling = world.sibling.number
    for url in (
        reverse("ef-contract", args=[sibling]),
        reverse("ef-drawdown", args=[sibling]),
        reverse("ef-report", args=[sibling, 1]),
        reverse("ef-true-up", args=[sibling, 1]),
    ):
        assert client.get(url).status_code == 404, url
    listed = [row["reach"].contract for row in client.get(reverse("ef-contracts")).context["rows"]]
    assert listed == [world.contract]


def test_a_site_or_drawdown_of_another_contract_under_this_contract_is_a_404(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world.super_user)
    n = world.contract.number
    other_site = world.other_contract.sites.get()
    assert client.get(reverse("ef-site-edit", args=[n, other_site.pk])).status_code == 404
    response = client.post(reverse("ef-site-edit", args=[n, other_site.pk]), {"name": "Hijack"})
    assert response.status_code == 404
    other_site.refresh_from_db()
    assert other_site.name == "Main site"
    other = drawdown_create(
        contract=world.other_contract,
        request=DrawdownRequest(
            line_id=world.other_contract.lines.get().pk, site_id=other_site.pk, quantity=1
        ),
        actor=UserFactory(),
        token="x",
    )
    assert client.get(reverse("ef-drawdown-result", args=[n, other.pk])).status_code == 404
    # Another contract's number in the URL: the organization's contracts only.
    assert client.get(reverse("ef-contract", args=[world.other_contract.number])).status_code == 404


def test_drawdown_lists_show_own_or_all_by_level(client, world) -> None:  # type: ignore[no-untyped-def]
    url = reverse("ef-drawdowns", args=[world.contract.number])
    client.force_login(world.contract_user)
    assert [d.pk for d in client.get(url).context["page"].object_list] == [world.mine.pk]
    client.force_login(world.configuration_user)
    seen = [d.pk for d in client.get(url).context["page"].object_list]
    assert seen == [world.theirs.pk, world.mine.pk]


def test_values_are_shown_to_super_users_only(client, world) -> None:  # type: ignore[no-untyped-def]
    world.line.unit_value = 123.45
    world.line.save()
    for role, shown in (
        ("super_user", True),
        ("configuration_user", False),
        ("contract_user", False),
    ):
        client.force_login(world.user(role))
        page = client.get(reverse("ef-contract", args=[world.contract.number])).content.decode()
        assert ("123.45" in page) is shown, role
    for role, status in (("super_user", 200), ("configuration_user", 200)):
        client.force_login(world.user(role))
        response = client.get(reverse("ef-true-up", args=[world.contract.number, 1]))
        assert response.status_code == status
        assert ("123.45" in response.content.decode()) is (role == "super_user"), role


# -- channel partners acting for the customer --------------------------------------------------


def _partner_access(world: World, scopes: set[str]) -> OrganizationAccess:
    partner = OrganizationFactory(kind=Organization.Kind.PARTNER)
    return OrganizationAccess(
        organization=world.contract.organization, scopes=frozenset(scopes), partner=partner
    )


def test_a_partner_with_the_obtain_keys_scope_draws_down_on_every_contract(world) -> None:  # type: ignore[no-untyped-def]
    access = _partner_access(world, {"obtain_keys", "view_licenses"})
    partner_user = UserFactory()
    assert ef_delegated_level(access) == "delegated"
    reaches = contracts_for(actor=partner_user, access=access)
    assert {r.contract for r in reaches} == {world.contract, world.sibling}
    assert all(r.level == "delegated" and r.partner_id == access.partner.pk for r in reaches)  # type: ignore[union-attr]
    reach = contract_for(actor=partner_user, access=access, number=world.contract.number)
    assert reach.allows("draw_down") and reach.allows("view_own_drawdowns")
    assert not reach.allows("view_all_drawdowns") and not reach.allows("manage_users")
    # Drawdowns only: the customer's deployment report (every user's drawn-down figures per
    # product and site, and a draft the super user then submits) is not the partner's.
    assert not reach.allows("declare_deployment")
    with pytest.raises(Http404):
        contract_for(actor=partner_user, access=access, number=world.other_contract.number)


def test_a_partner_opens_no_deployment_report(client, world) -> None:  # type: ignore[no-untyped-def]
    # An obtain-keys partner read every user's drawn-down totals on the report page and saved
    # the customer's draft ("Draft saved."), which the super user then submitted.
    draw = DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=3)
    drawdown_create(contract=world.contract, request=draw, actor=world.contract_user, token="t")
    partner = MembershipFactory(role="admin", organization=OrganizationFactory(kind="partner"))
    delegation = DelegationFactory(
        customer=world.contract.organization,
        partner=partner.organization,
        scopes=["obtain_keys"],
    )
    client.force_login(partner.user)
    assert client.post(reverse("partner-act", args=[delegation.pk])).status_code == 302
    n = world.contract.number
    url = reverse("ef-report", args=[n, 1])
    key = f"q_{world.line.pk}_{world.site.pk}"
    for response in (client.get(url), client.post(url, {key: "0", "save": "1"})):
        assert response.status_code == 403
        assert "is for drawing down keys" in response.content.decode()
    assert not EFDeploymentReport.objects.exists()
    # Its contract page offers drawdowns, not the report.
    page = client.get(reverse("ef-contract", args=[n])).content.decode()
    assert reverse("ef-drawdown", args=[n]) in page and url not in page
    # Its level says what it is, not a contract user's level it does not have.
    assert "You are a Channel partner (draws down keys)" in page
    assert client.get(reverse("ef-drawdown", args=[n])).status_code == 200
    # In Portuguese too (the request activates it; `override` puts back what was active).
    with translation.override("en"):
        refused = client.get(url, HTTP_ACCEPT_LANGUAGE="pt-br")
    assert refused.status_code == 403 and '<html lang="pt-br"' in refused.content.decode()


def test_a_partner_without_the_scope_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    access = _partner_access(world, {"view_licenses", "manage_data"})
    assert ef_delegated_level(access) is None
    assert contracts_for(actor=UserFactory(), access=access) == []
    request = RequestFactory().get("/")
    request.user = UserFactory()
    request.access = access  # type: ignore[attr-defined]
    with pytest.raises(PermissionDenied, match="partner access"):
        _reach(request, world.contract.number)  # type: ignore[arg-type]
    assert not access.allows(Action.OBTAIN_KEYS)


def test_a_partner_in_scope_draws_down_and_the_audit_names_both_sides(world) -> None:  # type: ignore[no-untyped-def]
    from portal.models import AuditEvent

    access = _partner_access(world, {"obtain_keys"})
    partner_user = UserFactory()
    request = RequestFactory().get("/")
    request.user = partner_user
    request.access = access  # type: ignore[attr-defined]
    reach = _reach(request, world.contract.number, "draw_down")  # type: ignore[arg-type]
    drawdown = drawdown_create(
        contract=reach.contract,
        request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=1),
        actor=partner_user,
        token="partner",
        partner=access.partner,
    )
    assert drawdown.partner == access.partner
    assert drawdown.license.owner == world.contract.organization  # the customer's key
    event = AuditEvent.objects.get(action="ef.drawdown", object_id=str(drawdown.pk))
    assert event.organization == access.partner
    assert event.acting_for == world.contract.organization
