"""A notification that closed while the wizard was open (its license upgraded with a serial in
Get a key, or its line used up): confirming says the upgrade is no longer available, not that
the ID is wrong, and counts no failed code attempt, since the ID was accepted at step 1."""

from __future__ import annotations

import pytest
from django.utils import timezone

from licensing.models import License, SerialNumber
from licensing.services import serial_redeem
from portal.models import FailedCodeAttempt
from tests.licensing.factories import REGISTRATION, SerialNumberFactory
from tests.upgrades.test_wizard import current, errors, step, walk
from upgrades.models import UpgradeLine, UpgradeRedemption

pytestmark = pytest.mark.django_db

NO_LONGER = "This upgrade is no longer available: the license was upgraded or changed"


def test_a_license_upgraded_with_a_serial_meanwhile(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, quantity=3, confirm=False)
    # Another session redeems an upgrade serial for all ten seats against the same license.
    serial = SerialNumberFactory(version=setup["new"], kind=SerialNumber.Kind.UPGRADE, quantity=10)
    serial_redeem(
        code=serial.code,
        organization=setup["member"].organization,
        registration=REGISTRATION,
        acting_user=setup["member"].user,
        target_license_id=str(setup["source"].pk),
    )
    response = step(client, "confirm")
    assert current(response) == "notification"
    message = errors(response)
    assert NO_LONGER in message and "Check the ID" not in message
    assert not FailedCodeAttempt.objects.exists()
    assert not UpgradeRedemption.objects.exists()
    assert License.objects.get(pk=setup["source"].pk).status == License.Status.SUPERSEDED


def test_a_line_used_up_meanwhile_counts_no_failed_attempt(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, quantity=3, confirm=False)
    UpgradeLine.objects.filter(pk=setup["line"].pk).update(remaining_quantity=0)
    response = step(client, "confirm")
    assert current(response) == "notification" and NO_LONGER in errors(response)
    assert not FailedCodeAttempt.objects.exists()


def test_confirming_is_not_refused_by_a_budget_used_up_since_step_one(client, setup) -> None:  # type: ignore[no-untyped-def]
    # The ID was checked at step 1; codes refused since (in another wizard, another tab) do
    # not take that back: confirming types no code.
    walk(client, setup, quantity=3, confirm=False)
    user = setup["member"].user
    FailedCodeAttempt.objects.bulk_create(
        FailedCodeAttempt(
            at=timezone.now(), user=user, ip="127.0.0.0", action="serial.rate_limited"
        )
        for _ in range(10)
    )
    response = step(client, "confirm")
    assert response.status_code == 302, errors(response)
    assert License.objects.filter(source="upgrade", quantity=3).exists()
