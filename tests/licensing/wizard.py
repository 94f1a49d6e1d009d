"""Drives the Get-a-key wizard through Django's test client, step by step."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from tests.licensing.factories import REGISTRATION

PREFIX = "get_a_key_wizard"


def instance_token(client: Client, prefix: str = PREFIX) -> str:
    """The token of the wizard instance the session holds: what the last page carried."""
    state = client.session.get(f"wizard_{prefix}") or {}
    return str((state.get("extra_data") or {}).get("instance", ""))


def post_step(
    client: Client, step: str, data: dict[str, Any] | None = None, *, token: str | None = None
) -> Any:
    """Posts a step as the page of the current instance would (or with `token`, an old page)."""
    payload = {
        f"{PREFIX}-current_step": step,
        f"{PREFIX}-instance": instance_token(client) if token is None else token,
    }
    for name, value in (data or {}).items():
        payload[f"{step}-{name}"] = value
    return client.post(reverse("get-a-key"), payload)


def start_over(client: Client) -> Any:
    """Presses "Start over" on the current page and follows it to the new instance's step 1."""
    return client.post(
        reverse("get-a-key"),
        {f"{PREFIX}-current_step": "serial", "wizard_start_over": "1"},
        follow=True,
    )


def walk(
    client: Client,
    code: str,
    *,
    registration: dict[str, Any] | None = None,
    confirm: bool = True,
) -> Any:
    """Steps 1-3; returns the last response (the redirect to the result after Confirm)."""
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": code})
    assert response.status_code == 200, response
    assert response.context["wizard"]["steps"].current == "registration", _errors(response)
    response = post_step(client, "registration", {**REGISTRATION, **(registration or {})})
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "confirm", _errors(response)
    if not confirm:
        return response
    return post_step(client, "confirm")


def _errors(response: Any) -> Any:
    form = response.context["wizard"]["form"]
    return form.errors
