"""Every upgrade wizard instance has a token, however it started; a confirm needs it.

The race that gave three licenses: the steps posted directly (no GET first, so no token), then
40 confirms at once in one session, each inventing its own token.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from licensing.models import License
from tests.conftest import postgres_only
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine, UpgradeNotification, UpgradeRedemption
from upgrades.services import notifications_create

PREFIX = "upgrade_wizard"
STARTED_OVER = "This request started over; please check and confirm again."
THREADS = 40


def _setup() -> dict:  # type: ignore[type-arg]
    member = MembershipFactory()
    old, new = catalog()
    source = licensed(member.organization, old, quantity=10, host_id="")
    notifications_create(version=new, today=timezone.localdate())
    return {
        "member": member,
        "source": source,
        "notification": UpgradeNotification.objects.get(),
        "line": UpgradeLine.objects.get(),
    }


def _token_in(response) -> str:  # type: ignore[no-untyped-def]
    """The instance token as a browser finds it: the hidden input of the rendered page."""
    match = re.search(rf'name="{PREFIX}-instance" value="([^"]*)"', response.content.decode())
    assert match, "the page carries no wizard instance token"
    return match.group(1)


def _post(client: Client, name: str, data: dict | None = None, token: str = ""):  # type: ignore[no-untyped-def, type-arg]
    payload = {f"{PREFIX}-current_step": name, f"{PREFIX}-instance": token}
    payload.update({f"{name}-{k}": v for k, v in (data or {}).items()})
    return client.post(reverse("upgrade"), payload)


def _post_steps_without_a_get(client: Client, s: dict) -> str:  # type: ignore[type-arg]
    """Steps 1-4 posted directly, as a script or a re-post would; returns the page's token."""
    response = _post(client, "notification", {"notification_id": s["notification"].code})
    token = _token_in(response)
    assert token, "the first POST must give the instance its token"
    response = _post(client, "line", {"line": s["line"].pk}, token)
    response = _post(client, "quantity", {"quantity": 2}, _token_in(response))
    response = _post(client, "registration", REGISTRATION, _token_in(response))
    assert response.context["wizard"]["steps"].current == "confirm"
    return _token_in(response)


def _race(session_key: str, token: str) -> Counter:  # type: ignore[type-arg]
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def confirm() -> None:
        tab = Client()
        tab.cookies[settings.SESSION_COOKIE_NAME] = session_key
        try:
            barrier.wait(timeout=30)
            response = _post(tab, "confirm", token=token)
            outcome = response["Location"] if response.status_code == 302 else "refused"
        except Exception as exc:
            outcome = f"error: {exc!r}"
        finally:
            connections.close_all()
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=confirm) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only()
def test_forty_concurrent_confirms_of_a_posted_wizard_give_one_license() -> None:
    s = _setup()
    client = Client()
    client.force_login(s["member"].user)
    token = _post_steps_without_a_get(client, s)
    outcomes = _race(client.cookies[settings.SESSION_COOKIE_NAME].value, token)
    assert sum(outcomes.values()) == THREADS, outcomes
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    assert License.objects.filter(source="upgrade").count() == 1, outcomes
    assert UpgradeRedemption.objects.count() == 1
    assert UpgradeLine.objects.get().remaining_quantity == 8
    license = License.objects.get(source="upgrade")
    result = reverse("get-a-key-result", kwargs={"pk": license.pk})
    # Every confirm that was not refused shows that one result.
    assert set(outcomes) <= {result, "refused"} and outcomes[result] >= 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only()
def test_forty_concurrent_confirms_without_a_token_issue_nothing() -> None:
    s = _setup()
    client = Client()
    client.force_login(s["member"].user)
    _post_steps_without_a_get(client, s)
    outcomes = _race(client.cookies[settings.SESSION_COOKIE_NAME].value, "")
    assert outcomes == Counter({"refused": THREADS})
    assert not License.objects.filter(source="upgrade").exists()


@pytest.mark.django_db
def test_reposting_after_back_keeps_one_instance_and_one_license(client) -> None:  # type: ignore[no-untyped-def]
    s = _setup()
    client.force_login(s["member"].user)
    token = _post_steps_without_a_get(client, s)
    # Back to the quantity, then forward again: still the same instance and token.
    back = client.post(
        reverse("upgrade"),
        {
            f"{PREFIX}-current_step": "confirm",
            f"{PREFIX}-instance": token,
            "wizard_goto_step": "quantity",
        },
    )
    assert back.context["wizard"]["steps"].current == "quantity" and _token_in(back) == token
    response = _post(client, "quantity", {"quantity": 2}, token)
    assert response.context["wizard"]["steps"].current == "registration"
    response = _post(client, "registration", REGISTRATION, token)
    assert response.context["wizard"]["steps"].current == "confirm"
    first = _post(client, "confirm", token=token)
    again = _post(client, "confirm", token=token)
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    assert License.objects.filter(source="upgrade").count() == 1


@pytest.mark.django_db
def test_a_confirm_without_the_instance_token_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    s = _setup()
    client.force_login(s["member"].user)
    _post_steps_without_a_get(client, s)
    response = _post(client, "confirm", token="")
    assert response.status_code == 200
    assert STARTED_OVER in response.content.decode()
    assert not License.objects.filter(source="upgrade").exists()
    # A token of no instance of the session (forged, or another tab's page replaced since):
    # an empty first step, never the session's Confirm page.
    response = _post(client, "confirm", token="forged-token")
    assert "replaced by the same form opened in another tab" in response.content.decode()
    assert response.context["wizard"]["steps"].current == "notification"
    assert not License.objects.filter(source="upgrade").exists()
