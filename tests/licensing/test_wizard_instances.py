"""A wizard whose state moved on says so, and never shows another wizard's result.

The bug: on Confirm, starting "Get a license key" again (then: opening it from the menu or a
second tab; now: "Start over" in another tab) reset the session's wizard; Back then Next showed
a blank Confirm page, and Confirm showed an older, unrelated license's result page while the
serial stayed unredeemed.
"""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.urls import reverse

from licensing.models import License, SerialNumber
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.licensing.wizard import PREFIX, instance_token, post_step, start_over, walk
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

STARTED_OVER = "This request started over; please check and confirm again."
REPLACED = (
    "This page was replaced by the same form opened in another tab. Start again here, or "
    "continue in the other tab."
)


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def _current(response) -> str:  # type: ignore[no-untyped-def]
    return response.context["wizard"]["steps"].current


def _back(client: Client, from_step: str, to_step: str, token: str):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("get-a-key"),
        {
            f"{PREFIX}-current_step": from_step,
            f"{PREFIX}-instance": token,
            "wizard_goto_step": to_step,
        },
    )


def test_menu_then_back_next_confirm_never_shows_an_unrelated_result(client, member) -> None:  # type: ignore[no-untyped-def]
    older = SerialNumberFactory()
    walk(client, older.code)  # an earlier, unrelated license: the page the bug showed
    unrelated = License.objects.get()
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    old_page = instance_token(client)

    start_over(client)  # "Start over" in another tab: a new instance

    back = _back(client, "confirm", "registration", old_page)
    assert back.status_code == 200 and STARTED_OVER in back.content.decode()
    # Not a blank registration or confirm page: the live instance, at its own step.
    assert _current(back) == "serial"
    nxt = post_step(client, "registration", REGISTRATION, token=old_page)
    assert STARTED_OVER in nxt.content.decode() and _current(nxt) == "serial"
    confirm = post_step(client, "confirm", token=old_page)
    assert confirm.status_code == 200 and STARTED_OVER in confirm.content.decode()
    assert str(unrelated.pk) not in confirm.get("Location", "")
    assert str(unrelated.pk) not in confirm.content.decode()

    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN
    assert License.objects.count() == 1
    # Checking and confirming again works.
    response = walk(client, serial.code)
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.REDEEMED
    assert response["Location"] == reverse("get-a-key-result", kwargs={"pk": serial.license_id})


def test_two_tabs_each_confirm_only_what_their_page_showed(client, member) -> None:  # type: ignore[no-untyped-def]
    first, second = SerialNumberFactory(), SerialNumberFactory()
    walk(client, first.code, confirm=False)
    tab_a = instance_token(client)
    # Tab B, same session, pressed "Start over": its own instance with another serial.
    start_over(client)
    walk(client, second.code, confirm=False)
    tab_b = instance_token(client)
    assert tab_a != tab_b

    # Tab A's Confirm page showed the first serial; the session now holds the second one.
    response = post_step(client, "confirm", token=tab_a)
    assert response.status_code == 200 and REPLACED in html.unescape(response.content.decode())
    # Not tab B's Confirm (it showed tab B's serial, to be confirmed from tab A): an empty
    # first step, and tab B's progress is kept.
    assert _current(response) == "serial" and second.code not in response.content.decode()
    assert instance_token(client) == tab_b
    assert not License.objects.exists()

    done = post_step(client, "confirm", token=tab_b)
    assert done.status_code == 302
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.status == SerialNumber.Status.REDEEMED
    assert first.status == SerialNumber.Status.OPEN
    assert done["Location"] == reverse("get-a-key-result", kwargs={"pk": second.license_id})
    # A second click on tab B's Confirm: its own result again, nothing new.
    again = post_step(client, "confirm", token=tab_b)
    assert again.status_code == 302 and again["Location"] == done["Location"]
    # Tab A's stale Confirm still issues nothing and shows no result.
    stale = post_step(client, "confirm", token=tab_a)
    assert stale.status_code == 200 and STARTED_OVER in stale.content.decode()
    assert License.objects.count() == 1


def test_the_replaced_tab_starts_again_without_ending_the_other(client, member) -> None:  # type: ignore[no-untyped-def]
    first, second = SerialNumberFactory(), SerialNumberFactory()
    walk(client, first.code, confirm=False)
    tab_a = instance_token(client)
    start_over(client)  # in tab B: opening the wizard again would show tab A's progress
    walk(client, second.code, confirm=False)
    tab_b = instance_token(client)
    # Back from tab A's Confirm: the same, nothing of tab B's registration shown.
    response = _back(client, "confirm", "registration", tab_a)
    assert REPLACED in html.unescape(response.content.decode()) and _current(response) == "serial"
    # The empty first step carries no token; submitted, it starts tab A's new instance.
    assert 'name="get_a_key_wizard-instance"' in response.content.decode()
    assert f'value="{tab_b}"' not in response.content.decode()
    assert instance_token(client) == tab_b
    response = post_step(client, "serial", {"serial": first.code}, token="")
    assert _current(response) == "registration" and instance_token(client) != tab_b


def test_steps_posted_without_a_token_start_a_new_instance_or_are_refused(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    # The first step without a token (no GET before it) starts an instance with its token.
    response = post_step(client, "serial", {"serial": serial.code}, token="")
    assert _current(response) == "registration"
    token = instance_token(client)
    assert token and f'value="{token}"' in response.content.decode()
    # A later step without it is refused, and so is a Confirm.
    refused = post_step(client, "registration", REGISTRATION, token="")
    assert STARTED_OVER in refused.content.decode()
    post_step(client, "registration", REGISTRATION)
    refused = post_step(client, "confirm", token="")
    assert STARTED_OVER in refused.content.decode()
    assert not License.objects.exists()
    assert post_step(client, "confirm").status_code == 302
    assert License.objects.count() == 1


def _switch(client: Client, organization_id: int) -> None:
    client.post(reverse("organization-switch"), {"organization": organization_id, "next": "/"})


def test_switching_organization_before_confirm_starts_over(client, member) -> None:  # type: ignore[no-untyped-def]
    # Confirming in a tab opened for one organization after switching to another (top bar,
    # another tab, or a partner acting for another customer) used to register the key to the
    # organization switched to, with the registration prefilled from the first one.
    second = MembershipFactory(user=member.user)
    _switch(client, member.organization_id)
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    page = instance_token(client)

    _switch(client, second.organization_id)
    response = post_step(client, "confirm", token=page)

    assert response.status_code == 200
    assert "You are now working for" in response.content.decode()  # and why it started over
    assert _current(response) == "serial"
    assert not License.objects.exists()
    assert SerialNumber.objects.get().status == SerialNumber.Status.OPEN
    # Switching back does not bring the old instance back either.
    _switch(client, member.organization_id)
    response = post_step(client, "confirm", token=page)
    assert "started over" in response.content.decode() and not License.objects.exists()
