"""The drawdown wizard: line → quantity and site → confirm → key; bad input is a form error
that changes nothing; a second confirmation shows the first result."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import translation

from enterprise_flex.models import EFContract, EFDrawdown, EFSite
from enterprise_flex.services import contract_user_set
from licensing.models import License
from portal.models import OutboundEmail
from tests.enterprise_flex.factories import (
    EFLineFactory,
    World,
    draw_down,
    make_world,
    post_step,
)
from tests.licensing import wizard as get_a_key
from tests.licensing.factories import (
    REGISTRATION,
    LicenseFactory,
    ProductFactory,
    ProductVersionFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
)
from tests.licensing.wizard import instance_token
from tests.licensing.wizard import post_step as get_a_key_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client) -> World:  # type: ignore[no-untyped-def]
    world = make_world(committed_quantity=10)
    world.site.contact_email = "plant@acme.example"
    world.site.save()
    client.force_login(world.contract_user)
    return world


def test_draw_down_and_get_the_key(client, world) -> None:  # type: ignore[no-untyped-def]
    response = draw_down(
        client, world.contract, line=world.line, site=world.site, quantity=4, confirm=False
    )
    page = response.content.decode()
    assert "Confirm" in page and "4" in page and world.site.name in page
    assert world.contract.grey_year_end.isoformat() in page
    assert response.context["overage"] == 0 and not License.objects.exists()
    assert "ef-overage-notice" not in page
    response = post_step(client, world.contract, "confirm")
    drawdown = EFDrawdown.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "ef-drawdown-result", args=[world.contract.number, drawdown.pk]
    )
    result = client.get(response["Location"])
    assert result.status_code == 200
    content = result.content.decode()
    assert drawdown.license.key in content and "Download license file" in content
    assert "plant@acme.example" in content
    emails = OutboundEmail.objects.filter(template="license_issued")
    assert {a for e in emails for a in e.to} == {"plant@acme.example", world.contract_user.email}
    download = client.get(reverse("license-file", args=[drawdown.license.pk]))
    assert download.status_code == 200 and b"BEGIN LICENSE FILE" in download.content


def test_confirming_twice_shows_the_first_result(client, world) -> None:  # type: ignore[no-untyped-def]
    draw_down(client, world.contract, line=world.line, site=world.site, quantity=2, confirm=False)
    page_token = instance_token(client, f"ef_drawdown_{world.contract.number}")
    first = post_step(client, world.contract, "confirm")
    # The same page submitted again (double click, back and resubmit) carries the same token.
    second = post_step(client, world.contract, "confirm", token=page_token)
    assert second.status_code == 302 and second["Location"] == first["Location"]
    assert EFDrawdown.objects.count() == License.objects.count() == 1
    world.line.refresh_from_db()
    assert world.line.drawn_quantity == 2


STARTED_OVER = "This request started over; please check and confirm again."


def _confirm_elsewhere(client, url: str, prefix: str, token: str):  # type: ignore[no-untyped-def]
    return client.post(url, {f"{prefix}-current_step": "confirm", f"{prefix}-instance": token})


CHANGED_ELSEWHERE = (
    "These details were changed in another tab after this page was shown. Check them here, "
    "then confirm."
)


def test_two_tabs_never_confirm_the_other_tabs_product(client, world) -> None:  # type: ignore[no-untyped-def]
    # Tab 1 reached Confirm for one product (3 units); tab 2, the same wizard opened again (it
    # shows the progress: tabs share it), chose another (7). Confirm in tab 1 drew down tab 2's
    # product, which tab 1's page never showed.
    wsg = EFLineFactory(
        contract=world.contract,
        committed_quantity=20,
        version=ProductVersionFactory(product=ProductFactory(name="Web Security Gateway")),
    )
    prefix = f"ef_drawdown_{world.contract.number}"
    tab_1 = draw_down(
        client, world.contract, line=world.line, site=world.site, quantity=3, confirm=False
    )
    shown = tab_1.context["wizard"]["management_form"]["revision"].value()
    draw_down(client, world.contract, line=wsg, site=world.site, quantity=7, confirm=False)
    url = reverse("ef-drawdown", kwargs={"number": world.contract.number})
    confirm = {
        f"{prefix}-current_step": "confirm",
        f"{prefix}-instance": instance_token(client, prefix),
    }
    response = client.post(url, {**confirm, f"{prefix}-revision": shown})
    assert response.status_code == 200
    assert CHANGED_ELSEWHERE in html.unescape(response.content.decode())
    assert response.context["wizard"]["steps"].current == "confirm"  # now showing WSG x 7
    assert not EFDrawdown.objects.exists()
    current = response.context["wizard"]["management_form"]["revision"].value()
    assert client.post(url, {**confirm, f"{prefix}-revision": current}).status_code == 302
    drawdown = EFDrawdown.objects.get()
    assert (drawdown.line, drawdown.quantity) == (wsg, 7)


@pytest.mark.parametrize("other", ["get_a_key", "upgrade", "sibling"])
def test_a_finished_drawdown_is_no_other_wizards_result(client, world, other) -> None:  # type: ignore[no-untyped-def]
    # The wizards keep their finished instances in one session entry: a drawdown's token posted
    # to Get a key's confirmation was taken for a finished Get a key, whose result page was
    # reversed with the drawdown's id (NoReverseMatch, a 500).
    draw_down(client, world.contract, line=world.line, site=world.site, quantity=2, confirm=False)
    token = instance_token(client, f"ef_drawdown_{world.contract.number}")
    assert post_step(client, world.contract, "confirm").status_code == 302
    if other == "sibling":  # the drawdown wizard of another contract of the organization
        EFLineFactory(contract=world.sibling)
        contract_user_set(
            contract=world.sibling, user=world.contract_user, level="contract", actor=None
        )
        url = reverse("ef-drawdown", args=[world.sibling.number])
        prefix, first = f"ef_drawdown_{world.sibling.number}", "line"
    else:
        url = reverse("get-a-key" if other == "get_a_key" else "upgrade")
        prefix = f"{other}_wizard"
        first = "serial" if other == "get_a_key" else "notification"
    response = _confirm_elsewhere(client, url, prefix, token)
    assert response.status_code == 200 and STARTED_OVER in response.content.decode()
    assert response.context["wizard"]["steps"].current == first
    assert EFDrawdown.objects.count() == License.objects.count() == 1


def test_a_finished_get_a_key_is_no_drawdowns_result(client, world) -> None:  # type: ignore[no-untyped-def]
    get_a_key.walk(client, SerialNumberFactory().code, confirm=False)
    token = instance_token(client)
    assert get_a_key.post_step(client, "confirm").status_code == 302
    prefix = f"ef_drawdown_{world.contract.number}"
    url = reverse("ef-drawdown", args=[world.contract.number])
    response = _confirm_elsewhere(client, url, prefix, token)
    assert response.status_code == 200 and STARTED_OVER in response.content.decode()
    assert response.context["wizard"]["steps"].current == "line"
    assert License.objects.count() == 1 and not EFDrawdown.objects.exists()
    # Its own wizard still takes it: a second submit lands on its result.
    again = get_a_key.post_step(client, "confirm", token=token)
    assert again.status_code == 302
    assert again["Location"] == reverse("get-a-key-result", args=[License.objects.get().pk])


def test_the_confirm_step_announces_overage_before_the_click(client, world) -> None:  # type: ignore[no-untyped-def]
    world.line.overage_allowed = True
    world.line.save()
    response = draw_down(
        client, world.contract, line=world.line, site=world.site, quantity=13, confirm=False
    )
    assert response.context["overage"] == 3
    assert "3 units will be recorded as overage" in response.content.decode()
    post_step(client, world.contract, "confirm")
    assert EFDrawdown.objects.get().overage_quantity == 3


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "at least 1"),
        ("-4", "at least 1"),
        ("1e9", "whole number"),
        ("abc", "whole number"),
        ("", "required"),
        ("99999999999999999999", "at most 1,000,000"),
        ("11", "Only 10 are left on this line, and it does not allow overage"),
    ],
)
def test_bad_quantities_are_form_errors_and_change_nothing(
    client, world, quantity, message
) -> None:  # type: ignore[no-untyped-def]
    response = draw_down(
        client, world.contract, line=world.line, site=world.site, quantity=quantity
    )
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "quantity"
    assert message in " ".join(response.context["wizard"]["form"].errors["quantity"])
    assert not License.objects.exists()
    world.line.refresh_from_db()
    assert world.line.drawn_quantity == 0


def test_a_site_or_line_of_another_contract_is_a_form_error(client, world) -> None:  # type: ignore[no-untyped-def]
    other_site = world.other_contract.sites.get()
    response = draw_down(client, world.contract, line=world.line, site=other_site, quantity=1)
    assert (
        "Choose one of this contract's active sites."
        in response.context["wizard"]["form"].errors["site"]
    )
    client.get(reverse("ef-drawdown", args=[world.contract.number]))
    response = post_step(
        client, world.contract, "line", {"line": world.other_contract.lines.get().pk}
    )
    assert response.context["wizard"]["steps"].current == "line"
    assert (
        "Choose one of this contract's products."
        in response.context["wizard"]["form"].errors["line"]
    )
    for junk in ("-1", "abc", "9" * 30):
        response = post_step(client, world.contract, "line", {"line": junk})
        assert response.status_code == 200 and response.context["wizard"]["form"].errors
    assert not License.objects.exists()


def test_steps_cannot_be_skipped(client, world) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("ef-drawdown", args=[world.contract.number]))
    response = post_step(client, world.contract, "confirm")
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "line"
    assert not License.objects.exists()
    response = post_step(client, world.contract, "nonsense")
    assert response.status_code == 302  # a tampered step restarts the wizard
    assert not License.objects.exists()


def test_the_drawdown_link_of_a_line_starts_at_the_quantity_step(client, world) -> None:  # type: ignore[no-untyped-def]
    url = reverse("ef-drawdown", args=[world.contract.number])
    response = client.get(url, {"line": world.line.pk})
    assert response.context["wizard"]["steps"].current == "quantity"
    response = client.get(url, {"line": world.other_contract.lines.get().pk})
    assert response.context["wizard"]["steps"].current == "line"


@pytest.mark.parametrize("when", ["before", "grey", "suspended"])
def test_outside_the_period_the_wizard_refuses_with_the_dates(client, world, when) -> None:  # type: ignore[no-untyped-def]
    contract = world.contract
    if when == "before":
        start = contract.period_start + timedelta(days=60)
        EFContract.objects.filter(pk=contract.pk).update(period_start=start)
        expected = start.isoformat()
    elif when == "grey":
        end = contract.period_start + timedelta(days=10)
        EFContract.objects.filter(pk=contract.pk).update(period_end=end)
        expected = end.isoformat()
    else:
        EFContract.objects.filter(pk=contract.pk).update(status="suspended")
        expected = "suspended"
    response = client.get(reverse("ef-drawdown", args=[contract.number]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("ef-contract", args=[contract.number])
    assert expected in response.content.decode()
    assert "ef-drawdown-refusal" in response.content.decode()


def test_a_drawdown_refused_at_confirm_time_says_why(client, world) -> None:  # type: ignore[no-untyped-def]
    draw_down(client, world.contract, line=world.line, site=world.site, quantity=6, confirm=False)
    # Someone else drew down meanwhile: only 3 are left when this one confirms.
    world.line.drawn_quantity = 7
    world.line.save()
    response = post_step(client, world.contract, "confirm")
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        response = client.get(response["Location"])
    assert "Only 3 are left" in response.content.decode()
    assert not License.objects.exists()


def test_node_locked_lines_ask_for_the_host_id(client, world) -> None:  # type: ignore[no-untyped-def]
    line = world.line
    line.version = ProductVersionFactory(product=ProductFactory(node_locked=True))
    line.save()
    response = draw_down(client, world.contract, line=line, site=world.site, quantity=1)
    assert "required" in " ".join(response.context["wizard"]["form"].errors["host_id"])
    response = draw_down(
        client, world.contract, line=line, site=world.site, quantity=1, host_id="HOST-42"
    )
    assert response.status_code == 302
    assert License.objects.get().host_id == "HOST-42"


def test_without_an_active_site_the_quantity_step_says_whom_to_ask(client, world) -> None:  # type: ignore[no-untyped-def]
    # The site list was empty and the error said to choose one of the active sites.
    EFSite.objects.filter(contract=world.contract).update(active=False)
    response = draw_down(client, world.contract, line=world.line, site=world.site, quantity=1)
    message = "has no active site"
    assert message in response.content.decode()
    assert any(message in error for error in response.context["wizard"]["form"].errors["site"])
    assert not License.objects.exists()


def test_the_period_refusal_writes_dates_as_the_language_does(client, world) -> None:  # type: ignore[no-untyped-def]
    # The dates were ISO in every language: 2026-03-04 in a Portuguese sentence, beside the
    # page's 04/03/2026.
    contract = world.contract
    end = contract.period_start + timedelta(days=10)
    EFContract.objects.filter(pk=contract.pk).update(period_end=end)
    # The request activates Portuguese in this thread: `override` puts back what was active.
    with translation.override("en"):
        response = client.get(
            reverse("ef-drawdown", args=[contract.number]),
            HTTP_ACCEPT_LANGUAGE="pt-br",
            follow=True,
        )
    page = response.content.decode()
    assert "ef-drawdown-refusal" in page
    assert end.strftime("%d/%m/%Y") in page
    assert end.isoformat() not in page


def _get_a_key_prefill(client) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What Get a key's registration step is prefilled with, for a new serial."""
    client.get(reverse("get-a-key"))
    response = get_a_key_step(client, "serial", {"serial": SerialNumberFactory().code})
    assert response.context["wizard"]["steps"].current == "registration"
    return dict(response.context["wizard"]["form"].initial)


def test_a_drawdown_does_not_change_what_get_a_key_prefills(client, world) -> None:  # type: ignore[no-untyped-def]
    # The registration saved with each drawdown (the site's contact, no phones) was the
    # organization's latest: Get a key prefilled it, and Next failed on the empty phones.
    organization = world.contract.organization
    # No registration of its own yet: the organization and the user, as for a first key.
    draw_down(client, world.contract, line=world.line, site=world.site, quantity=1)
    prefill = _get_a_key_prefill(client)
    assert prefill["company"] == organization.name
    assert prefill["primary_email"] == prefill["technical_email"] == world.contract_user.email
    # A key from a serial, then a drawdown: the serial's registration is still the one offered.
    earlier = SupportRegistrationFactory(organization=organization, **REGISTRATION)
    LicenseFactory(owner=organization, registration=earlier)
    draw_down(client, world.contract, line=world.line, site=world.site, quantity=1)
    assert EFDrawdown.objects.count() == 2
    prefill = _get_a_key_prefill(client)
    assert {name: str(prefill[name]) for name in REGISTRATION} == REGISTRATION
    # And the step goes on to Confirm with it as it is.
    response = get_a_key_step(client, "registration", REGISTRATION)
    assert response.context["wizard"]["steps"].current == "confirm"
