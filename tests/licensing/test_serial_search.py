"""Staff find a serial in admin however its code is typed, as a customer may type it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.licensing.factories import SerialNumberFactory
from tests.portal.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _found(client, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    response = client.get(reverse("admin:licensing_serialnumber_changelist"), {"q": query})
    assert response.status_code == 200
    return [serial.code for serial in response.context["cl"].result_list]


def test_a_generated_code_typed_in_lower_case_without_dashes(staff_client) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    SerialNumberFactory()
    assert _found(staff_client, serial.code.lower().replace("-", "")) == [serial.code]
    assert _found(staff_client, serial.code.lower()) == [serial.code]


def test_a_legacy_code_typed_with_a_dash(staff_client) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(code="TESTD00001")
    assert _found(staff_client, "TESTD-00001") == [serial.code]
    assert _found(staff_client, "testd 00001") == [serial.code]


def test_other_searches_still_search_the_other_columns(staff_client) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(version__product__sku="WSS-GW")
    assert _found(staff_client, "WSS-GW") == [serial.code]
    assert _found(staff_client, "nothing-like-it") == []
