"""Actions that cannot be undone ask first (portal.http.confirmation): removing a member,
revoking a partner or a share, declining a customer, taking a user off an EF contract,
withdrawing an EF invitation. They took one click.

A POST without confirm=1 shows what will happen and changes nothing; the page's button posts the
same fields again with confirm=1, which acts; Cancel goes back to the page the action was on.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from enterprise_flex.models import EFContractUser, EFInvitation
from licensing.models import LicenseShare
from portal.models import Delegation, Membership, User
from tests.enterprise_flex.factories import make_world
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory

pytestmark = pytest.mark.django_db

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass
class Case:
    user: User
    url: str
    data: dict[str, str]
    says: str  # what the confirmation page says will happen
    cancel: str
    done: Callable[[], bool]


def member_remove() -> Case:
    admin = MembershipFactory()
    member = MembershipFactory(organization=admin.organization, role="member")
    return Case(
        admin.user,
        reverse("member-update", args=[member.pk]),
        {"remove": "1", "role": "member"},
        f"{member.user.email} loses access to {admin.organization.name}",
        reverse("members"),
        lambda: not Membership.objects.filter(pk=member.pk).exists(),
    )


def member_remove_self() -> Case:
    # Offered on one's own row: it locks one out at once, and the page says so.
    admin = MembershipFactory()
    MembershipFactory(organization=admin.organization)  # another administrator
    return Case(
        admin.user,
        reverse("member-update", args=[admin.pk]),
        {"remove": "1", "role": "admin"},
        f"This is your own account: you lose access to {admin.organization.name} at once",
        reverse("members"),
        lambda: not Membership.objects.filter(pk=admin.pk).exists(),
    )


def partner_revoke() -> Case:
    admin = MembershipFactory()
    delegation = DelegationFactory(customer=admin.organization)
    return Case(
        admin.user,
        reverse("partner-update", args=[delegation.pk]),
        {"revoke": "1"},
        f"{delegation.partner.name} can no longer act for you",
        reverse("partners"),
        lambda: Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.REVOKED,
    )


def _partner_decline(*, claimed: bool) -> Case:
    partner_admin = MembershipFactory(organization=PartnerFactory())
    delegation = DelegationFactory(partner=partner_admin.organization)
    if claimed:
        MembershipFactory(organization=delegation.customer)
        says = f"Your organization will no longer be able to act for {delegation.customer.name}"
    else:
        says = f"{delegation.customer.name} has no administrator yet: once you decline, nobody"
    return Case(
        partner_admin.user,
        reverse("partner-decline", args=[delegation.pk]),
        {},
        says,
        reverse("partner-customers"),
        lambda: Delegation.objects.get(pk=delegation.pk).status == Delegation.Status.DECLINED,
    )


def partner_decline() -> Case:
    return _partner_decline(claimed=True)


def partner_decline_unclaimed() -> Case:
    return _partner_decline(claimed=False)


def share_revoke() -> Case:
    admin = MembershipFactory()
    license = LicenseFactory(owner=admin.organization)
    share = LicenseShare.objects.create(license=license, email="team@customer.example")
    return Case(
        admin.user,
        reverse("share-revoke", args=[share.pk]),
        {},
        "team@customer.example loses access to this license at once",
        reverse("license-detail", args=[license.pk]),
        lambda: LicenseShare.objects.get(pk=share.pk).revoked_at is not None,
    )


def ef_user_remove() -> Case:
    world = make_world()
    row = EFContractUser.objects.get(contract=world.contract, user=world.contract_user)
    return Case(
        world.super_user,
        reverse("ef-user-update", args=[world.contract.number, row.pk]),
        {"remove": "1", "level": "contract"},
        f"{world.contract_user.email} loses access to contract {world.contract.number} at once",
        reverse("ef-users", args=[world.contract.number]),
        lambda: not EFContractUser.objects.filter(pk=row.pk).exists(),
    )


def ef_invitation_withdraw() -> Case:
    world = make_world()
    invitation = EFInvitation.objects.create(
        contract=world.contract, email="bob@acme.example", level="contract"
    )
    return Case(
        world.super_user,
        reverse("ef-invitation-revoke", args=[world.contract.number, invitation.pk]),
        {},
        "The link in the invitation email stops working",
        reverse("ef-users", args=[world.contract.number]),
        lambda: EFInvitation.objects.get(pk=invitation.pk).revoked_at is not None,
    )


CASES = [
    member_remove,
    member_remove_self,
    partner_revoke,
    partner_decline,
    partner_decline_unclaimed,
    share_revoke,
    ef_user_remove,
    ef_invitation_withdraw,
]


def _confirm_form(page: str) -> tuple[str, dict[str, Any]]:
    """The confirmation form's address and the fields its button posts."""
    form = page.split('data-testid="confirm-consequences"', 1)[1].split("<form", 1)[1]
    form = form.split("</form>", 1)[0]
    action = re.search(r'action="([^"]*)"', form)
    assert action is not None
    fields = {name: value for name, value in HIDDEN.findall(form) if name != "csrfmiddlewaretoken"}
    return action.group(1), fields


@pytest.mark.parametrize("make", CASES, ids=[make.__name__ for make in CASES])
def test_asks_first_and_acts_only_once_confirmed(client: Client, make: Callable[[], Case]) -> None:
    case = make()
    client.force_login(case.user)

    asked = client.post(case.url, case.data)
    assert asked.status_code == 200
    page = html.unescape(asked.content.decode())
    assert case.says in page
    assert f'href="{case.cancel}"' in page
    assert not case.done(), "acted without confirmation"

    action, fields = _confirm_form(page)
    assert action == case.url
    assert fields == {**case.data, "confirm": "1"}
    response = client.post(action, fields)
    assert response.status_code == 302
    assert case.done()

    # Posted again (the back button, an old tab): what it did is said, never a bare 404.
    again = client.post(action, fields, follow=True)
    assert again.status_code == 200, case.url


def test_no_confirmation_for_a_removal_that_is_refused(client: Client) -> None:
    # The last administrator removing themselves was asked "you lose access at once", then
    # refused: nothing is asked, the refusal says why.
    admin = MembershipFactory()
    client.force_login(admin.user)
    response = client.post(
        reverse("member-update", args=[admin.pk]), {"remove": "1", "role": "admin"}, follow=True
    )
    page = html.unescape(response.content.decode())
    assert "at least one administrator" in page
    assert 'data-testid="confirm-consequences"' not in page
    assert Membership.objects.filter(pk=admin.pk).exists()
    # The last super user of an EF contract likewise.
    world = make_world()
    row = EFContractUser.objects.get(contract=world.contract, user=world.super_user)
    client.force_login(world.super_user)
    response = client.post(
        reverse("ef-user-update", args=[world.contract.number, row.pk]),
        {"remove": "1", "level": row.level},
        follow=True,
    )
    page = html.unescape(response.content.decode())
    assert "at least one super user" in page
    assert 'data-testid="confirm-consequences"' not in page


def test_withdrawing_an_invitation_is_not_labelled_like_cancel(client: Client) -> None:
    # In pt-BR "Withdraw" and "Cancel" both read "Cancelar": the page had two opposite buttons
    # with one name.
    case = ef_invitation_withdraw()
    client.force_login(case.user)
    page = client.post(case.url, case.data, HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    assert "Cancelar o convite" in page
