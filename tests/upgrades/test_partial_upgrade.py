"""An upgrade of part of a license: confirmed after a colleague lowered the license's quantity,
it is decided from the license as it is at confirmation, never from what the wizard read
earlier; the seats left on the license come with its reissued file by email."""

from __future__ import annotations

import pytest
from django.urls import reverse

from licensing.models import License
from portal.models import OutboundEmail
from tests.licensing.factories import REGISTRATION, emailed_file_quantity
from tests.upgrades.test_wizard import current, step, walk
from upgrades.models import UpgradeLine, UpgradeRedemption
from upgrades.services import UpgradeError, upgrade_redeem

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("license_email_writer")]


def _colleague_upgrades(s, quantity: int) -> None:  # type: ignore[no-untyped-def]
    """Another session of the organization upgrades `quantity` seats of the same license with
    the newer notification (another version)."""
    upgrade_redeem(
        line_id=s["newer_line"].pk,
        quantity=quantity,
        organization=s["member"].organization,
        registration=REGISTRATION,
        actor=s["member"].user,
        token="colleague",
    )


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.wsgi_request._messages]


def test_a_part_that_became_the_whole_license_is_refused(client, two_releases) -> None:  # type: ignore[no-untyped-def]
    # 4 of 10 seats chosen; meanwhile a colleague upgraded 6 to 16.0, so 4 is all that is left.
    # Confirming upgraded all 4 and superseded the license: a whole upgrade nobody asked for.
    s = two_releases
    walk(client, s, quantity=4, confirm=False)
    _colleague_upgrades(s, 6)
    response = step(client, "confirm")
    assert response.status_code == 302 and response["Location"] == reverse("upgrade")
    (message,) = _messages(response)
    assert "now has 4 seats" in message and "Start again" in message
    source = License.objects.get(pk=s["source"].pk)
    assert (source.quantity, source.status) == (4, License.Status.ACTIVE)
    assert not License.objects.filter(version=s["new"]).exists()
    assert UpgradeLine.objects.get(pk=s["line"].pk).remaining_quantity == 10
    assert UpgradeRedemption.objects.count() == 1  # the colleague's


def test_the_whole_license_asked_for_is_upgraded_whole(client, two_releases) -> None:  # type: ignore[no-untyped-def]
    s = two_releases
    _colleague_upgrades(s, 6)  # before the quantity step: 4 is the whole license now
    walk(client, s, quantity=4)
    source = License.objects.get(pk=s["source"].pk)
    assert (source.quantity, source.status) == (0, License.Status.SUPERSEDED)
    assert License.objects.get(version=s["new"]).quantity == 4


def test_a_smaller_part_still_left_is_upgraded(client, two_releases) -> None:  # type: ignore[no-untyped-def]
    s = two_releases
    walk(client, s, quantity=3, confirm=False)
    _colleague_upgrades(s, 6)
    step(client, "confirm")
    source = License.objects.get(pk=s["source"].pk)
    assert (source.quantity, source.status) == (1, License.Status.ACTIVE)
    assert License.objects.get(version=s["new"]).quantity == 3


@pytest.mark.parametrize("now", [3, 4])
def test_the_service_decides_from_the_locked_license(two_releases, now) -> None:  # type: ignore[no-untyped-def]
    """Lowered between the wizard's last check and the license's lock: more than the license
    has, or all of it when part was asked for, is refused and nothing changes."""
    s = two_releases
    _colleague_upgrades(s, 10 - now)
    with pytest.raises(UpgradeError, match=f"now has {now} seats"):
        upgrade_redeem(
            line_id=s["line"].pk,
            quantity=4,
            license_quantity=10,
            organization=s["member"].organization,
            registration=REGISTRATION,
            actor=s["member"].user,
            token="late",
        )
    source = License.objects.get(pk=s["source"].pk)
    assert (source.quantity, source.status) == (now, License.Status.ACTIVE)
    assert UpgradeLine.objects.get(pk=s["line"].pk).remaining_quantity == 10


def test_the_confirm_page_posts_what_the_quantity_step_showed(client, two_releases) -> None:  # type: ignore[no-untyped-def]
    # Lowered after the quantity page was shown but before it was posted: the form accepts 4
    # (all that is left), yet the person chose 4 of the 10 the page showed.
    s = two_releases
    client.get(reverse("upgrade"))
    step(client, "notification", {"notification_id": s["notification"].code})
    response = step(client, "line", {"line": s["line"].pk})
    assert current(response) == "quantity"
    _colleague_upgrades(s, 6)
    response = step(client, "quantity", {"quantity": 4})
    assert current(response) == "registration"
    step(client, "registration", REGISTRATION)
    response = step(client, "confirm")
    assert "now has 4 seats" in " ".join(_messages(response))
    assert License.objects.get(pk=s["source"].pk).status == License.Status.ACTIVE


def test_the_seats_left_are_emailed_with_their_reissued_file(  # type: ignore[no-untyped-def]
    client, setup, django_capture_on_commit_callbacks
) -> None:
    # 4 of 10 upgraded: the new license's email went out, but the 6 left on the old license
    # were reissued in a file nobody received; the inbox held only the file saying 10.
    with django_capture_on_commit_callbacks(execute=True):
        walk(client, setup, quantity=4, registration={"technical_email": "new-tech@acme.example"})
    source = License.objects.get(pk=setup["source"].pk)
    new_license = License.objects.get(version=setup["new"])
    audience = sorted([setup["member"].user.email, "new-tech@acme.example"])
    by_template = {}
    for row in OutboundEmail.objects.order_by("created_at"):
        by_template.setdefault(row.template, []).append(row)
    assert sorted(by_template) == ["license_issued", "license_upgraded_in_part"]
    for template, license, quantity in (
        ("license_issued", new_license, 4),
        ("license_upgraded_in_part", source, 6),
    ):
        rows = by_template[template]
        # The same audience as every license email: the person acting and the technical
        # contact (as edited in the wizard), one body each (the link for whom can open it).
        assert sorted(address for row in rows for address in row.to) == audience
        for row in rows:
            assert emailed_file_quantity(row, license) == quantity
            assert license.key in row.body_text
    (remaining, *_) = by_template["license_upgraded_in_part"]
    assert remaining.subject.endswith("Your Endpoint Shield 14.3 license now has 6 seats")
    assert "Version 15.0 now covers 4 of the seats" in remaining.body_text
    assert "6 seats stay on this license, under the same key" in remaining.body_text
    assert "replaces the previous one" in remaining.body_html


def test_an_upgrade_of_the_whole_license_emails_only_the_new_one(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, quantity=10)
    assert set(OutboundEmail.objects.values_list("template", flat=True)) == {"license_issued"}
