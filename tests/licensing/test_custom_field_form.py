"""The custom field form's messages say what to change, once: options over the length limit
were also told to "list at least two options", and a huge position got Django's technical
"≤ 9223372036854775807"."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from licensing.models import CustomField
from portal.models import Membership
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client) -> Membership:
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(membership.user)
    return membership


def _errors(client: Client, **data: object) -> dict[str, list[str]]:
    response = client.post(
        reverse("custom-fields"), {"name": "Site", "field_type": "choice", "position": 0, **data}
    )
    assert response.status_code == 200
    assert not CustomField.objects.exists()
    return dict(response.context["form"].errors)


def test_options_over_the_limit_get_only_the_length_message(client, admin) -> None:  # type: ignore[no-untyped-def]
    options = "\n".join(f"Option number {n}" for n in range(1500))

    errors = _errors(client, choices=options)

    assert errors["choices"] == [
        f"Ensure this value has at most 5000 characters (it has {len(options)})."
    ]


def test_too_few_options_are_still_refused(client, admin) -> None:  # type: ignore[no-untyped-def]
    assert _errors(client, choices="Only one")["choices"] == [
        "List at least two options, one per line."
    ]


@pytest.mark.parametrize("position", ["99999999999999999999", "1001", "-1"])
def test_a_position_out_of_range_says_which_numbers_fit(client, admin, position) -> None:  # type: ignore[no-untyped-def]
    errors = _errors(client, field_type="text", position=position)

    assert errors["position"] == ["Enter a position from 0 to 1,000: lower numbers come first."]


def test_the_position_message_reads_the_number_as_the_language_writes_it(client, admin) -> None:  # type: ignore[no-untyped-def]
    with translation.override("pt-br"):
        response = client.post(
            reverse("custom-fields"),
            {"name": "Site", "field_type": "text", "position": "99999999999999999999"},
            headers={"accept-language": "pt-BR"},
        )
    (message,) = response.context["form"].errors["position"]
    assert "1.000" in message and "32767" not in message and "922337" not in message


def test_the_highest_position_is_kept(client, admin) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("custom-fields"), {"name": "Site", "field_type": "text", "position": 1000}
    )
    assert response.status_code == 302
    assert CustomField.objects.get().position == 1000
