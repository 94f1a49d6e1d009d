"""Junk to every Enterprise Flexible URL, with a real contract, as each level: never a 500, and
nothing changes that the junk could have changed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from enterprise_flex.models import EFContractUser, EFDeploymentEntry, EFDrawdown, EFSite
from enterprise_flex.urls import urlpatterns
from tests.enterprise_flex.factories import make_world
from tests.test_no_server_errors import JUNK_FORM, JUNK_QUERY

pytestmark = pytest.mark.django_db

JUNK = {
    **JUNK_FORM,
    "add": "1",
    "invite": "1",
    "remove": "1",
    "submit": "1",
    "save": "1",
    "add-member": "'; drop",
    "add-level": "root",
    "invite-email": "x" * 300,
    "invite-level": "",
    "add_line": "-1",
    "add_site": "abc",
    "add_quantity": "1e99",
    "q_1_1": "-7",
    "level": "emperor",
    "active": "maybe",
    "contact_email": "not an email",
    "ef_drawdown_X-current_step": "confirm",
    "line-line": "0",
    "quantity-quantity": "NaN",
    "quantity-site": "9" * 40,
}


def _snapshot() -> tuple[int, ...]:
    return (
        EFDrawdown.objects.count(),
        EFSite.objects.count(),
        EFContractUser.objects.count(),
        EFDeploymentEntry.objects.count(),
    )


@pytest.mark.parametrize("who", ["super_user", "configuration_user", "contract_user"])
def test_junk_never_gives_a_500(client, who) -> None:  # type: ignore[no-untyped-def]
    world = make_world()
    client.force_login(world.user(who))
    # The super user's own row: the last super user, so the junk's "remove" is refused. Any
    # other row would be removed at a super user's request, rightly (the first row by email
    # depended on how many users earlier tests had made: user10 sorts before user8).
    row = EFContractUser.objects.get(contract=world.contract, user=world.super_user)
    kwargs = {
        "number": world.contract.number,
        "pk": row.pk,
        "year": 1,
        "token": "nope",
    }
    before = _snapshot()
    for pattern in urlpatterns:
        names = pattern.pattern.converters  # type: ignore[attr-defined]
        args = {name: kwargs[name] for name in names}
        url = reverse(pattern.name, kwargs=args)
        for variant in (url, url.replace(world.contract.number, "EF-<script>")):
            response = client.get(variant, JUNK_QUERY)
            assert response.status_code < 500, variant
            response = client.post(variant, JUNK)
            assert response.status_code < 500, variant
    assert _snapshot() == before
    world.line.refresh_from_db()
    assert world.line.drawn_quantity == 0


@pytest.mark.parametrize("who", ["super_user", None])
def test_a_nul_in_a_contract_number_or_invitation_token_is_a_not_found(client, who) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL refuses a NUL in a text parameter: the lookup itself was a 500.
    world = make_world()
    if who is not None:
        client.force_login(world.user(who))
    number = world.contract.number
    paths = [
        f"/enterprise-flex/{number}%00/",
        "/enterprise-flex/EF-1%00/draw-down/",
        f"/enterprise-flex/{number}%00/reports/1/",
        "/enterprise-flex/invitations/abc%00def/",
    ]
    for path in paths:
        assert client.get(path).status_code == 404, path
        assert client.post(path).status_code in (403, 404), path
