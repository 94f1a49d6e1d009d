"""Drives the Voucher center through Django's test client, step by step."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from tests.licensing.factories import REGISTRATION


def submit_codes(client: Client, text: str = "", *, file: Any = None) -> Any:
    data: dict[str, Any] = {"codes": text}
    if file is not None:
        data["file"] = file
    return client.post(reverse("voucher-center"), data)


def state_token(client: Client) -> str:
    """The token of the Voucher center instance the session holds: what its pages carry."""
    from vouchers.wizard import SESSION_KEY

    return str((client.session.get(SESSION_KEY) or {}).get("token", ""))


def walk_from_preview(
    client: Client,
    token: str,
    *,
    combine: bool = True,
    registration: dict[str, Any] | None = None,
    confirm: bool = True,
) -> Any:
    """Steps 1 (preview) to 3 of the instance whose pages carry `token`."""
    data: dict[str, Any] = {"token": token, **({"combine": "on"} if combine else {})}
    response = client.post(reverse("voucher-center-preview"), data)
    assert response.status_code == 302, response
    assert response["Location"] == reverse("voucher-center-registration")
    response = client.post(
        reverse("voucher-center-registration"),
        {**REGISTRATION, **(registration or {}), "token": token},
    )
    assert response.status_code == 302, form_errors(response)
    assert response["Location"] == reverse("voucher-center-confirm")
    response = client.get(reverse("voucher-center-confirm"))
    assert response.status_code == 200
    if not confirm:
        return response
    return client.post(
        reverse("voucher-center-confirm"), {"token": response.context["form"].initial["token"]}
    )


def walk(
    client: Client,
    text: str = "",
    *,
    file: Any = None,
    combine: bool = True,
    registration: dict[str, Any] | None = None,
    confirm: bool = True,
) -> Any:
    """Steps 1-3; returns the last response (the redirect to the result after Confirm)."""
    response = submit_codes(client, text, file=file)
    assert response.status_code == 302, form_errors(response)
    assert response["Location"] == reverse("voucher-center-preview")
    return walk_from_preview(
        client, state_token(client), combine=combine, registration=registration, confirm=confirm
    )


def confirm_token(client: Client) -> str:
    response = client.get(reverse("voucher-center-confirm"))
    return str(response.context["form"].initial["token"])


def form_errors(response: Any) -> Any:
    context = getattr(response, "context", None)
    if not context or "form" not in context:
        return response
    return context["form"].errors
