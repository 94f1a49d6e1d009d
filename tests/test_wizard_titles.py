"""Each wizard step names itself in the page title, and a refused step says so first: every step
of Get a key, Version upgrade, the Voucher center and an EF drawdown had the wizard's name only,
so the browser's tabs and history and a screen reader's first words did not tell them apart."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.enterprise_flex.factories import make_world
from tests.licensing.factories import SerialNumberFactory
from tests.licensing.wizard import post_step
from tests.portal.factories import MembershipFactory
from tests.vouchers.wizard import submit_codes

pytestmark = pytest.mark.django_db


def title(response: Any) -> str:
    found = re.search(r"<title>(.*?)</title>", response.content.decode(), re.S)
    assert found is not None
    return " ".join(html.unescape(found.group(1)).split())


@pytest.fixture
def member(client: Client) -> Any:
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def test_get_a_key_steps(client: Client, member: Any) -> None:
    first = client.get(reverse("get-a-key"))
    assert title(first).startswith("Step 1 of 4: Serial number – Get a license key · ")
    refused = post_step(client, "serial", {"serial": ""})
    assert title(refused).startswith("Error: Step 1 of 4: Serial number – Get a license key · ")
    second = post_step(client, "serial", {"serial": SerialNumberFactory().code})
    assert title(second).startswith("Step 2 of 4: Registration and contacts – Get a license key · ")


def test_voucher_center_steps(client: Client, member: Any) -> None:
    assert title(client.get(reverse("voucher-center"))).startswith(
        "Step 1 of 4: Voucher codes – Voucher center"
    )
    assert title(submit_codes(client, "")).startswith(
        "Error: Step 1 of 4: Voucher codes – Voucher center"
    )


def test_version_upgrade_and_drawdown_first_steps(client: Client) -> None:
    world = make_world()
    client.force_login(world.super_user)
    assert title(client.get(reverse("upgrade"))).startswith(
        "Step 1 of 6: Notification ID – Version upgrade"
    )
    drawdown = client.get(reverse("ef-drawdown", args=[world.contract.number]))
    assert title(drawdown).startswith(f"Step 1 of 4: Product – Draw down · {world.contract.number}")


def test_a_voucher_preview_in_which_no_code_can_be_converted_is_a_refused_step(
    client: Client, member: Any
) -> None:
    # It read like any preview, its reason a polite "status": nothing said the step failed.
    preview = client.get(submit_codes(client, "ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ")["Location"])
    assert title(preview).startswith("Error: Step 1 of 4: Voucher codes – Voucher center")
    page = preview.content.decode()
    assert 'role="alert" data-testid="voucher-none-usable"' in page
