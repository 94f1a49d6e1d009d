"""Pages issue a bounded number of queries, the same with 3 drawdowns as with 40."""

from __future__ import annotations

import secrets

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from enterprise_flex.services import DrawdownRequest, drawdown_create, site_create
from tests.enterprise_flex.factories import EFLineFactory, World, make_world

pytestmark = pytest.mark.django_db

# Page → most queries allowed (the session, the user, the membership and the access checks
# come first; then the page's own reads).
PAGES = {
    "ef-contracts": 6,
    "ef-contract": 12,
    "ef-drawdown": 12,
    "ef-drawdowns": 9,
    "ef-licenses": 15,
    "ef-report": 11,
    "ef-true-up": 10,
    "ef-true-up-csv": 9,
    "ef-true-up-pdf": 9,
}


def _url(world: World, name: str) -> str:
    if name == "ef-contracts":
        return reverse(name)
    if name in ("ef-report", "ef-true-up", "ef-true-up-csv", "ef-true-up-pdf"):
        return reverse(name, args=[world.contract.number, 1])
    return reverse(name, args=[world.contract.number])


def _draw(world: World, count: int) -> None:
    lines = list(world.contract.lines.all())
    sites = list(world.contract.sites.all())
    for index in range(count):
        drawdown_create(
            contract=world.contract,
            request=DrawdownRequest(
                line_id=lines[index % len(lines)].pk,
                site_id=sites[index % len(sites)].pk,
                quantity=1 + index % 3,
            ),
            actor=world.super_user if index % 2 else world.contract_user,
            token=secrets.token_urlsafe(8),
        )


def _counts(client, world: World) -> dict[str, int]:  # type: ignore[no-untyped-def]
    counts = {}
    for name in PAGES:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(_url(world, name))
        assert response.status_code == 200, name
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        counts[name] = len(captured)
    return counts


def test_queries_are_bounded_and_do_not_grow_with_drawdowns(client) -> None:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=1000)
    for _ in range(4):
        EFLineFactory(contract=world.contract, committed_quantity=1000)
    site_create(contract=world.contract, values={"name": "Plant 2"}, actor=None)
    _draw(world, 3)
    client.force_login(world.super_user)
    few = _counts(client, world)
    for name, limit in PAGES.items():
        assert few[name] <= limit, (name, few[name])
    _draw(world, 37)
    many = _counts(client, world)
    assert many == few


def test_a_drawdown_confirmation_is_bounded(client, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    from tests.enterprise_flex.factories import draw_down, post_step

    world = make_world(committed_quantity=10)
    client.force_login(world.contract_user)
    draw_down(client, world.contract, line=world.line, site=world.site, quantity=1, confirm=False)
    with django_assert_max_num_queries(40):
        response = post_step(client, world.contract, "confirm")
    assert response.status_code == 302
    with django_assert_max_num_queries(12):
        assert client.get(response["Location"]).status_code == 200
