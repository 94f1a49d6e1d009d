from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from licensing.codes import generate_short_code
from licensing.models import License
from portal.models import AuditEvent
from tests.licensing.factories import (
    REGISTRATION,
    SupportRegistrationFactory,
)
from tests.licensing.wizard import instance_token
from tests.portal.factories import MembershipFactory
from tests.upgrades.factories import RELEASE, catalog, licensed
from upgrades.models import UpgradeLine, UpgradeNotification, UpgradeRedemption
from upgrades.services import notifications_create

pytestmark = pytest.mark.django_db
PREFIX = "upgrade_wizard"


def step(client, name: str, data: dict | None = None, token: str | None = None):  # type: ignore[no-untyped-def]
    payload = {
        f"{PREFIX}-current_step": name,
        f"{PREFIX}-instance": instance_token(client, PREFIX) if token is None else token,
    }
    payload.update({f"{name}-{k}": v for k, v in (data or {}).items()})
    return client.post(reverse("upgrade"), payload)


def current(response) -> str:  # type: ignore[no-untyped-def]
    return response.context["wizard"]["steps"].current


def errors(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(" ".join(v) for v in response.context["wizard"]["form"].errors.values())


def walk(client, s, quantity=4, registration=None, confirm=True):  # type: ignore[no-untyped-def]
    client.get(reverse("upgrade"))
    response = step(client, "notification", {"notification_id": s["notification"].code.lower()})
    assert current(response) == "line", errors(response)
    response = step(client, "line", {"line": s["line"].pk})
    assert current(response) == "quantity", errors(response)
    response = step(client, "quantity", {"quantity": quantity})
    assert current(response) == "registration", errors(response)
    response = step(client, "registration", {**REGISTRATION, **(registration or {})})
    assert current(response) == "confirm", errors(response)
    return step(client, "confirm") if confirm else response


def test_upgrade_end_to_end(client, setup, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(
            client, setup, quantity=4, registration={"technical_email": "new-tech@acme.example"}
        )
    new_license = License.objects.get(source="upgrade")
    assert response["Location"] == reverse("get-a-key-result", kwargs={"pk": new_license.pk})
    source = setup["source"]
    source.refresh_from_db()
    assert new_license.version == setup["new"] and new_license.quantity == 4
    assert new_license.maintenance_end == source.maintenance_end
    assert new_license.supersedes == source and new_license.source_ref == setup["notification"].code
    assert source.quantity == 6 and source.status == "active"
    line = UpgradeLine.objects.get()
    assert line.remaining_quantity == 6 and line.eligible_quantity == 10
    # The registration was edited in place, not duplicated.
    assert new_license.registration_id == source.registration_id
    assert source.registration.technical_email == "new-tech@acme.example"
    assert AuditEvent.objects.filter(action="license.registration_changed").exists()
    # Two emails: the new license's, and the seats left with their reissued file.
    issued, reissued = [m for m in mail.outbox if "new-tech@acme.example" in m.to]
    assert new_license.key in issued.body and source.key in reissued.body
    assert client.get(response["Location"]).status_code == 200
    page = client.get(reverse("license-detail", kwargs={"pk": source.pk})).content.decode()
    assert f"Upgraded: 4 to version {setup['new'].version}" in page


def test_upgrading_everything_supersedes_the_source(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, quantity=10)
    setup["source"].refresh_from_db()
    assert setup["source"].quantity == 0 and setup["source"].status == "superseded"
    # The notification is used up: its ID is refused now, saying it was used.
    client.get(reverse("upgrade"))
    response = step(client, "notification", {"notification_id": setup["notification"].code})
    assert "already used this upgrade notification" in errors(response)


def test_registration_is_prefilled_from_the_source_license(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, confirm=False)
    client.get(reverse("upgrade"))
    step(client, "notification", {"notification_id": setup["notification"].code})
    step(client, "line", {"line": setup["line"].pk})
    response = step(client, "quantity", {"quantity": 1})
    initial = response.context["wizard"]["form"].initial
    assert initial["technical_email"] == setup["source"].registration.technical_email


def test_refusals_read_the_same(client, setup) -> None:  # type: ignore[no-untyped-def]
    other = MembershipFactory()
    old, new = setup["old"], setup["new"]
    licensed(other.organization, old)
    notifications_create(version=new, today=timezone.localdate())
    foreign = UpgradeNotification.objects.get(organization=other.organization)
    expired = setup["notification"]
    client.get(reverse("upgrade"))
    messages = set()
    for code in (generate_short_code(), foreign.code):
        messages.add(errors(step(client, "notification", {"notification_id": code})))
    UpgradeNotification.objects.filter(pk=expired.pk).update(
        expires_on=timezone.localdate() - timedelta(days=1)
    )
    assert len(messages) == 1 and "no open upgrade notification" in messages.pop()
    # The organization's own expired one is genuine: it says when it expired instead.
    own = errors(step(client, "notification", {"notification_id": expired.code}))
    assert "This upgrade notification expired on" in own


@pytest.mark.parametrize("raw", ["", "ABCD", "A" * 50, "ABCD-EFGH-JKMN-PQRX"])
def test_bad_notification_ids(client, setup, raw) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("upgrade"))
    response = step(client, "notification", {"notification_id": raw})
    assert current(response) == "notification" and errors(response)


def test_failed_ids_share_the_serial_rate_limit(client, setup) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("upgrade"))
    for _ in range(10):
        step(client, "notification", {"notification_id": generate_short_code()})
    response = step(client, "notification", {"notification_id": setup["notification"].code})
    assert "Too many codes were not recognised" in errors(response)
    # …and the Get-a-key wizard is blocked too: one budget.
    client.get(reverse("get-a-key"))
    response = client.post(
        reverse("get-a-key"), {"get_a_key_wizard-current_step": "serial", "serial-serial": "X" * 25}
    )
    assert "Too many" in str(response.context["wizard"]["form"].errors)


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "greater than or equal to 1"),
        ("-3", "greater than or equal to 1"),
        ("11", "Only 10 can be upgraded"),
        ("abc", "whole number"),
        ("99999999999999999999999", "Only 10 can be upgraded"),
        ("", "how many"),
    ],
)
def test_bad_quantities(client, setup, quantity, message) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("upgrade"))
    step(client, "notification", {"notification_id": setup["notification"].code})
    step(client, "line", {"line": setup["line"].pk})
    response = step(client, "quantity", {"quantity": quantity})
    assert current(response) == "quantity" and message in errors(response)
    assert UpgradeLine.objects.get().remaining_quantity == 10


def test_line_of_another_notification_is_refused(client, setup) -> None:  # type: ignore[no-untyped-def]
    other = MembershipFactory()
    licensed(other.organization, setup["old"])
    notifications_create(version=setup["new"], today=timezone.localdate())
    foreign_line = UpgradeLine.objects.exclude(pk=setup["line"].pk).get()
    client.get(reverse("upgrade"))
    step(client, "notification", {"notification_id": setup["notification"].code})
    response = step(client, "line", {"line": foreign_line.pk})
    assert current(response) == "line"
    assert "Choose one of the products listed" in errors(response)


def test_confirm_twice_gives_one_license(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, quantity=2, confirm=False)
    page = instance_token(client, PREFIX)  # what the Confirm page carries, clicked twice
    first = step(client, "confirm", token=page)
    second = step(client, "confirm", token=page)
    assert second.status_code == 302 and second["Location"] == first["Location"]
    assert License.objects.filter(source="upgrade").count() == 1
    assert UpgradeLine.objects.get().remaining_quantity == 8


def test_same_token_returns_the_first_result(setup) -> None:  # type: ignore[no-untyped-def]
    from upgrades.services import upgrade_redeem

    kwargs = {
        "line_id": setup["line"].pk,
        "quantity": 3,
        "registration": REGISTRATION,
        "organization": setup["member"].organization,
        "actor": setup["member"].user,
        "token": "tok-1",
    }
    first = upgrade_redeem(**kwargs)
    again = upgrade_redeem(**kwargs)
    assert first == again and UpgradeRedemption.objects.count() == 1
    assert UpgradeLine.objects.get().remaining_quantity == 7


def test_email_link_and_pending_list_start_at_step_two(client, setup) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("upgrade"), {"notification": setup["notification"].code})
    assert current(response) == "line"
    pending = client.get(reverse("upgrades-pending")).content.decode()
    assert setup["notification"].code in pending
    link = f"?notification={setup['notification'].code}&amp;line={setup['line'].pk}"
    assert link in pending
    response = client.get(
        reverse("upgrade"), {"notification": setup["notification"].code, "line": setup["line"].pk}
    )
    assert response.context["wizard"]["form"].initial == {"line": str(setup["line"].pk)}
    bad = client.get(reverse("upgrade"), {"notification": generate_short_code()}, follow=True)
    assert current(bad) == "notification"


def test_notification_page_shows_history(client, setup) -> None:  # type: ignore[no-untyped-def]
    walk(client, setup, quantity=2)
    page = client.get(reverse("upgrade-notification", args=[setup["notification"].pk]))
    content = page.content.decode()
    assert setup["member"].user.email in content and "Upgrade history" in content
    stranger = MembershipFactory()
    client.force_login(stranger.user)
    assert (
        client.get(reverse("upgrade-notification", args=[setup["notification"].pk])).status_code
        == 404
    )


def test_maintenance_lapsed_between_publication_and_upgrade_still_counts(client, setup) -> None:  # type: ignore[no-untyped-def]
    # Eligibility is fixed on the release date; a lapse afterwards does not take it away.
    License.objects.filter(pk=setup["source"].pk).update(
        maintenance_end=RELEASE + timedelta(days=1)
    )
    walk(client, setup, quantity=1)
    assert License.objects.filter(source="upgrade").count() == 1


def test_pending_and_notification_pages_have_bounded_queries(  # type: ignore[no-untyped-def]
    client, setup, django_assert_max_num_queries
) -> None:
    for _ in range(15):
        licensed(setup["member"].organization, setup["old"])
    notifications_create(version=setup["new"], today=timezone.localdate())
    with django_assert_max_num_queries(10):
        assert client.get(reverse("upgrades-pending")).status_code == 200
    walk(client, setup, quantity=1)
    with django_assert_max_num_queries(10):
        page = client.get(reverse("upgrade-notification", args=[setup["notification"].pk]))
    assert page.status_code == 200
    with django_assert_max_num_queries(13):  # + the failed-attempt budget the link goes through
        client.get(reverse("upgrade"), {"notification": setup["notification"].code})


def test_a_line_used_up_after_it_was_shown_is_refused_at_each_step(client, setup) -> None:  # type: ignore[no-untyped-def]
    """Someone else in the organization used the line while this wizard was open: each step
    says so in words that make sense (never "Enter 1 to 0"), and nothing is spent."""
    line = setup["line"]
    client.get(reverse("upgrade"))
    step(client, "notification", {"notification_id": setup["notification"].code})
    UpgradeLine.objects.filter(pk=line.pk).update(remaining_quantity=0)
    response = step(client, "line", {"line": line.pk})
    assert current(response) == "line"
    assert "nothing left to upgrade with this notification" in errors(response)

    UpgradeLine.objects.filter(pk=line.pk).update(remaining_quantity=10)
    step(client, "line", {"line": line.pk})
    UpgradeLine.objects.filter(pk=line.pk).update(remaining_quantity=0)
    response = step(client, "quantity", {"quantity": 1})
    assert current(response) == "quantity"
    assert "Nothing is left to upgrade on this line any more" in errors(response)
    page = response.content.decode()
    assert "1 to 0" not in page
    assert page.count("Nothing is left to upgrade on this line any more") == 1  # error, no help

    # Back to the products: none is left, and the page says so instead of an empty choice.
    response = client.post(
        reverse("upgrade"),
        {
            f"{PREFIX}-current_step": "quantity",
            f"{PREFIX}-instance": instance_token(client, PREFIX),
            "wizard_goto_step": "line",
        },
    )
    assert current(response) == "line"
    page = response.content.decode()
    assert 'data-testid="nothing-left"' in page and reverse("upgrades-pending") in page
    assert 'name="line-line"' not in page
    assert ">Next<" not in page.replace(" ", "").replace("\n", "")  # Back only
    assert 'data-testid="default-submit"' not in page

    UpgradeLine.objects.filter(pk=line.pk).update(remaining_quantity=10)
    step(client, "line", {"line": line.pk})
    response = step(client, "quantity", {"quantity": 1})
    response = step(client, "registration", REGISTRATION)
    assert current(response) == "confirm", errors(response)
    UpgradeLine.objects.filter(pk=line.pk).update(remaining_quantity=0)
    # The wizard checks its steps again; its only line used up, the notification has nothing
    # open any more: no longer available (the ID was right, see test_closed_meanwhile.py).
    response = step(client, "confirm")
    assert current(response) == "notification"
    assert "This upgrade is no longer available" in errors(response)
    assert not License.objects.filter(source="upgrade").exists()
    assert not UpgradeRedemption.objects.exists()


def test_the_service_refuses_a_used_up_line_in_words(setup) -> None:  # type: ignore[no-untyped-def]
    """Used up between the wizard's last check and the line's lock (a race): the redirect to
    the start carries this message."""
    from upgrades.services import UpgradeError, upgrade_redeem

    UpgradeLine.objects.filter(pk=setup["line"].pk).update(remaining_quantity=0)
    with pytest.raises(UpgradeError, match="Nothing is left to upgrade on this line any more"):
        upgrade_redeem(
            line_id=setup["line"].pk,
            quantity=1,
            registration=REGISTRATION,
            organization=setup["member"].organization,
            actor=setup["member"].user,
            token="tok-used-up",
        )
    assert not UpgradeRedemption.objects.exists()


def test_a_quantity_form_with_nothing_left_says_so_once() -> None:
    from upgrades.forms import QuantityForm

    shown = QuantityForm(remaining=0)
    assert "Nothing is left" in str(shown.fields["quantity"].help_text)
    submitted = QuantityForm({"quantity": "1"}, remaining=0)
    assert not submitted.is_valid()
    assert "Nothing is left" in " ".join(submitted.errors["quantity"])
    assert not submitted.fields["quantity"].help_text


def test_seats_upgraded_elsewhere_are_not_offered_again(client, two_releases) -> None:  # type: ignore[no-untyped-def]
    # 6 of the 10 seats go to 15.0: 4 are left on the source license. The 16.0 notification
    # still offered 10 (pending list, product step, "From 1 to 10"), and 5 or more was refused
    # only at Confirm with "no longer active with that quantity".
    s = two_releases
    walk(client, s, quantity=6)
    pending = client.get(reverse("upgrades-pending")).content.decode()
    assert "4 to upgrade" in pending and "10 to upgrade" not in pending
    page = client.get(reverse("upgrade-notification", kwargs={"pk": s["newer"].pk}))
    assert [line.upgradable_quantity for line in page.context["lines"]] == [4]

    client.get(reverse("upgrade"))
    response = step(client, "notification", {"notification_id": s["newer"].code})
    assert "4 to upgrade" in response.content.decode()
    response = step(client, "line", {"line": s["newer_line"].pk})
    assert current(response) == "quantity"
    assert response.context["wizard"]["form"].initial["quantity"] == 4
    response = step(client, "quantity", {"quantity": 5})
    assert current(response) == "quantity"
    assert "Only 4 can be upgraded on this line." in errors(response)
    response = step(client, "quantity", {"quantity": 4})
    assert current(response) == "registration"
    response = step(client, "registration", REGISTRATION)
    step(client, "confirm")
    assert License.objects.get(version__version="16.0").quantity == 4


def test_a_license_upgraded_in_full_leaves_the_other_notification(client, two_releases) -> None:  # type: ignore[no-untyped-def]
    s = two_releases
    walk(client, s, quantity=10)  # the source is superseded
    pending = client.get(reverse("upgrades-pending")).content.decode()
    assert s["newer"].code not in pending
    client.get(reverse("upgrade"))
    response = step(client, "notification", {"notification_id": s["newer"].code})
    assert current(response) == "notification"


def test_back_to_another_license_asks_its_own_registration(client) -> None:  # type: ignore[no-untyped-def]
    # Confirm for license A, Back to the product step, choose license B, Next: the quantity
    # and registration steps showed A's answers ("Check the support registration of this
    # license": A's company), and confirming wrote A's registration over B's.
    member = MembershipFactory()
    client.force_login(member.user)
    old, new = catalog()
    first = licensed(
        member.organization,
        old,
        quantity=10,
        registration=SupportRegistrationFactory(organization=member.organization, company="A Co"),
    )
    second = licensed(
        member.organization,
        old,
        quantity=3,
        registration=SupportRegistrationFactory(organization=member.organization, company="B Co"),
    )
    notifications_create(version=new, today=timezone.localdate())
    notification = UpgradeNotification.objects.get()
    line_a = UpgradeLine.objects.get(source_license=first)
    line_b = UpgradeLine.objects.get(source_license=second)
    walk(
        client,
        {"notification": notification, "line": line_a},
        quantity=8,
        registration={"company": "A Co"},
        confirm=False,
    )
    back = client.post(
        reverse("upgrade"),
        {
            f"{PREFIX}-current_step": "confirm",
            f"{PREFIX}-instance": instance_token(client, PREFIX),
            "wizard_goto_step": "line",
        },
    )
    assert current(back) == "line"
    response = step(client, "line", {"line": line_b.pk})
    assert current(response) == "quantity"
    assert response.context["wizard"]["form"]["quantity"].value() == 3
    response = step(client, "quantity", {"quantity": 3})
    assert current(response) == "registration"
    assert response.context["wizard"]["form"]["company"].value() == "B Co"
    data = {
        name: response.context["wizard"]["form"][name].value()
        for name in response.context["wizard"]["form"].fields
    }
    step(client, "registration", data)
    step(client, "confirm")
    second.refresh_from_db()
    first.refresh_from_db()
    assert (first.registration.company, second.registration.company) == ("A Co", "B Co")
    assert License.objects.get(version=new).quantity == 3


def test_back_to_another_notification_asks_the_later_steps_again(client, two_releases) -> None:  # type: ignore[no-untyped-def]
    s = two_releases
    walk(client, s, quantity=6, confirm=False)
    back = client.post(
        reverse("upgrade"),
        {
            f"{PREFIX}-current_step": "confirm",
            f"{PREFIX}-instance": instance_token(client, PREFIX),
            "wizard_goto_step": "notification",
        },
    )
    assert current(back) == "notification"
    response = step(client, "notification", {"notification_id": s["newer"].code})
    assert current(response) == "line"
    # Not the other notification's line, refused as "nothing left to upgrade".
    assert not response.context["wizard"]["form"].is_bound and not errors(response)
