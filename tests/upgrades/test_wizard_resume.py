"""The upgrade wizard opened again: the same link goes on with the upgrade in progress (the
language switch comes back to it), another notification's link starts over with that one; Back
keeps what was typed, and a different license chosen on the way back asks the later steps again.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.licensing.factories import REGISTRATION
from tests.licensing.wizard import instance_token
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import catalog, licensed
from tests.upgrades.test_wizard import PREFIX, current, step, walk
from upgrades.models import UpgradeNotification
from upgrades.services import notifications_create

pytestmark = pytest.mark.django_db


def _back(client, name: str, to: str, data: dict | None = None):  # type: ignore[no-untyped-def]
    payload = {
        f"{PREFIX}-current_step": name,
        f"{PREFIX}-instance": instance_token(client, PREFIX),
        "wizard_goto_step": to,
    }
    payload.update({f"{name}-{k}": v for k, v in (data or {}).items()})
    return client.post(reverse("upgrade"), payload)


def test_the_same_link_again_goes_on_with_the_upgrade_in_progress(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, confirm=False)
    token = instance_token(client, PREFIX)
    link = f"{reverse('upgrade')}?notification={setup['notification'].code}"

    response = client.post(
        reverse("set_language"), {"language": "pt-br", "next": link}, follow=True
    )

    assert current(response) == "confirm"
    assert instance_token(client, PREFIX) == token
    assert step(client, "confirm").status_code == 302


def test_another_notifications_link_starts_over_with_it(client, two_releases) -> None:  # type: ignore[no-untyped-def]
    walk(client, two_releases, confirm=False)
    token = instance_token(client, PREFIX)

    response = client.get(reverse("upgrade"), {"notification": two_releases["newer"].code})

    assert current(response) == "line"
    assert response.context["notification"] == two_releases["newer"]
    assert instance_token(client, PREFIX) != token


def test_back_from_the_registration_keeps_the_edits(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, confirm=False)
    _back(client, "confirm", "registration")
    edited = {**REGISTRATION, "technical_email": "edited@acme.example"}
    assert current(_back(client, "registration", "quantity", edited)) == "quantity"

    response = step(client, "quantity", {"quantity": 4})

    assert current(response) == "registration"
    assert response.context["wizard"]["form"]["technical_email"].value() == "edited@acme.example"


def test_another_license_chosen_on_the_way_back_asks_the_later_steps_again(client) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory()
    client.force_login(member.user)
    old, new = catalog()
    first = licensed(member.organization, old, quantity=10, host_id="")
    licensed(member.organization, old, quantity=5, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    notification = UpgradeNotification.objects.get()
    line_one = notification.lines.get(source_license=first)
    line_two = notification.lines.exclude(pk=line_one.pk).get()
    client.get(reverse("upgrade"), {"notification": notification.code})
    step(client, "line", {"line": line_one.pk})
    step(client, "quantity", {"quantity": 7})
    # Back to the product step, the other license chosen, and Back again from there.
    _back(client, "registration", "quantity")
    _back(client, "quantity", "line")
    _back(client, "line", "notification", {"line": line_two.pk})

    response = step(client, "notification", {"notification_id": notification.code})
    assert current(response) == "line"
    assert response.context["wizard"]["form"]["line"].value() == str(line_two.pk)
    response = step(client, "line", {"line": line_two.pk})

    # The first license's 7 is not carried over to the second one's 5 seats.
    assert current(response) == "quantity"
    assert response.context["wizard"]["form"]["quantity"].value() == 5
