"""Opening a wizard again shows its progress; only "Start over" throws it away; Back keeps
what was typed.

The bugs: every GET of /get-a-key/ reset the wizard, so opening it in a second tab (or the
top bar's "Get a license key", or the language switch, which redirects back to it) emptied the
first tab's serial and contacts, and its Confirm only said "started over". And Back from
"Registration and contacts" threw away everything typed on that step.
"""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from licensing.models import License, SerialNumber
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.licensing.wizard import PREFIX, instance_token, post_step, start_over, walk
from tests.portal.factories import MembershipFactory

REPLACED = (
    "This page was replaced by the same form opened in another tab. Start again here, or "
    "continue in the other tab."
)

pytestmark = pytest.mark.django_db

STARTED_OVER = "This request started over; please check and confirm again."


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def _current(response) -> str:  # type: ignore[no-untyped-def]
    return response.context["wizard"]["steps"].current


def test_opening_the_wizard_again_shows_the_progress_and_the_first_tab_confirms(
    client, member
) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    tab_one = instance_token(client)

    second_tab = client.get(reverse("get-a-key"))  # a second tab, or the top bar's link

    assert _current(second_tab) == "confirm"
    page = second_tab.content.decode()
    assert serial.code in page and REGISTRATION["address"] in page
    assert instance_token(client) == tab_one
    done = post_step(client, "confirm", token=tab_one)
    assert done.status_code == 302, done.content.decode()
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.REDEEMED
    assert done["Location"] == reverse("get-a-key-result", kwargs={"pk": serial.license_id})


def test_switching_the_language_keeps_the_step_and_what_was_entered(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    token = instance_token(client)

    response = client.post(
        reverse("set_language"), {"language": "pt-br", "next": reverse("get-a-key")}, follow=True
    )

    assert _current(response) == "confirm"
    page = response.content.decode()
    assert "Obter uma chave de licença" in page and serial.code in page
    assert post_step(client, "confirm", token=token).status_code == 302
    assert License.objects.count() == 1


def test_start_over_is_offered_once_something_was_entered_and_resets(client, member) -> None:  # type: ignore[no-untyped-def]
    fresh = client.get(reverse("get-a-key"))
    assert 'name="wizard_start_over"' not in fresh.content.decode()
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    old_page = instance_token(client)
    confirm_page = client.get(reverse("get-a-key")).content.decode()
    assert 'name="wizard_start_over"' in confirm_page

    # A GET never resets: only the button (a POST, with the CSRF token of the page) does.
    response = start_over(client)

    assert response.redirect_chain == [(reverse("get-a-key"), 302)]
    assert _current(response) == "serial"
    assert "Started over: what you had entered was cleared." in response.content.decode()
    assert serial.code not in response.content.decode()
    assert instance_token(client) not in ("", old_page)
    # The page from before Start over confirms nothing.
    stale = post_step(client, "confirm", token=old_page)
    assert STARTED_OVER in stale.content.decode()
    assert not License.objects.exists()


def test_a_get_after_the_instance_finished_starts_a_new_one(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code)
    finished = instance_token(client)

    response = client.get(reverse("get-a-key"))

    assert _current(response) == "serial"
    assert instance_token(client) not in ("", finished)
    assert response.context["wizard"]["form"].data == {}


def test_a_get_after_switching_organization_starts_over_and_says_why(client, member) -> None:  # type: ignore[no-untyped-def]
    second = MembershipFactory(user=member.user)
    client.post(reverse("organization-switch"), {"organization": member.organization_id})
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    client.post(reverse("organization-switch"), {"organization": second.organization_id})

    response = client.get(reverse("get-a-key"))

    assert _current(response) == "serial"
    assert "You are now working for" in response.content.decode()
    assert serial.code not in response.content.decode()


def _back(client, step: str, to: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    payload = {
        f"{PREFIX}-current_step": step,
        f"{PREFIX}-instance": instance_token(client),
        "wizard_goto_step": to,
    }
    payload.update({f"{step}-{name}": value for name, value in data.items()})
    return client.post(reverse("get-a-key"), payload)


def test_back_from_registration_keeps_what_was_typed(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": serial.code})
    typed = {
        **REGISTRATION,
        "address": "Rua Augusta 500",
        "technical_name": "Tânia Técnica",
        "technical_phone": "+55 11 5555-0199",
    }

    back = _back(client, "registration", "serial", typed)
    assert _current(back) == "serial"
    again = post_step(client, "serial", {"serial": serial.code})

    assert _current(again) == "registration"
    page = again.content.decode()
    assert "Rua Augusta 500" in page and "Tânia Técnica" in page and "5555-0199" in page


def test_back_keeps_a_half_filled_step_but_confirming_checks_it_again(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    confirm_tab = instance_token(client)
    # Another tab of the same progress: back to the registration, a bad email, then Back.
    client.post(
        reverse("get-a-key"),
        {
            f"{PREFIX}-current_step": "confirm",
            f"{PREFIX}-instance": confirm_tab,
            "wizard_goto_step": "registration",
        },
    )
    back = _back(client, "registration", "serial", {**REGISTRATION, "technical_email": "nope"})
    assert _current(back) == "serial"

    # The first tab's Confirm: every step is checked again, the bad one is shown, nothing issued.
    response = post_step(client, "confirm", token=confirm_tab)

    assert response.status_code == 200
    assert _current(response) == "registration"
    assert response.context["wizard"]["form"].errors["technical_email"]
    assert not License.objects.exists()
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN


def test_back_from_a_stale_page_keeps_nothing(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    kept = client.session[f"wizard_{PREFIX}"]["step_data"]["registration"]
    payload = {
        f"{PREFIX}-current_step": "registration",
        f"{PREFIX}-instance": "an-old-page",
        "wizard_goto_step": "serial",
        "registration-address": "Somewhere else",
    }
    response = client.post(reverse("get-a-key"), payload)
    # A page of another instance, while this one is past its first step: never this one's.
    assert REPLACED in html.unescape(response.content.decode())
    assert client.session[f"wizard_{PREFIX}"]["step_data"]["registration"] == kept
