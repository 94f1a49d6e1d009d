"""notification_lookup: what a notification ID given in an organization leads to, one of four
outcomes (open here, closed here, genuine elsewhere, failed), the one rule the wizard's link and
its first step both ask."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from licensing.codes import generate_short_code
from portal.models import Membership
from portal.policy import Scope
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory
from tests.upgrades.test_notification_elsewhere import _notification_of
from upgrades.models import UpgradeNotification
from upgrades.selectors import notification_lookup

pytestmark = pytest.mark.django_db


def test_an_open_notification_of_the_organization(setup) -> None:  # type: ignore[no-untyped-def]
    member, notification = setup["member"], setup["notification"]
    found = notification_lookup(
        code=notification.code.lower(), actor=member.user, organization=member.organization
    )
    assert found.notification == notification and found.elsewhere is None
    assert not found.failed


@pytest.mark.parametrize("how", ["membership", "delegation"])
def test_an_open_notification_of_another_organization_the_actor_acts_for(setup, how) -> None:  # type: ignore[no-untyped-def]
    if how == "membership":
        actor, here = setup["member"].user, setup["member"].organization
        other = MembershipFactory(user=actor, role=Membership.Role.MEMBER).organization
    else:
        partner = PartnerFactory()
        actor = MembershipFactory(organization=partner).user
        here = DelegationFactory(partner=partner, scopes=[Scope.OBTAIN_KEYS]).customer
        other = DelegationFactory(partner=partner, scopes=[Scope.OBTAIN_KEYS]).customer
    notification = _notification_of(other, setup)
    found = notification_lookup(code=notification.code, actor=actor, organization=here)
    assert found.notification is None and not found.failed
    assert found.elsewhere is not None and found.elsewhere.organization == other
    assert found.elsewhere.is_delegated == (how == "delegation")


def _expire(notification: UpgradeNotification) -> None:
    notification.expires_on = timezone.localdate() - timedelta(days=1)
    notification.save(update_fields=["expires_on"])


def _use_up(notification: UpgradeNotification) -> None:
    notification.lines.update(remaining_quantity=0)


@pytest.mark.parametrize("how", ["expired", "used_up"])
def test_a_closed_notification_of_the_organization(setup, how) -> None:  # type: ignore[no-untyped-def]
    member, notification = setup["member"], setup["notification"]
    (_expire if how == "expired" else _use_up)(notification)
    found = notification_lookup(
        code=notification.code, actor=member.user, organization=member.organization
    )
    assert found.closed == notification and found.notification is None
    assert found.elsewhere is None and not found.failed


@pytest.mark.parametrize(
    "case",
    [
        "unknown",
        "malformed",
        "stranger",
        "no_obtain_keys_scope",
        "expired_elsewhere",
        "used_up_elsewhere",
    ],
)
def test_anything_else_is_a_failed_code(setup, case) -> None:  # type: ignore[no-untyped-def]
    actor, here = setup["member"].user, setup["member"].organization
    code = setup["notification"].code
    if case == "unknown":
        code = generate_short_code()
    elif case == "malformed":
        code = "not a code"
    elif case == "stranger":  # an organization the actor has nothing to do with
        code = _notification_of(MembershipFactory().organization, setup).code
    elif case == "no_obtain_keys_scope":  # a customer that delegated, but not key obtaining
        partner = PartnerFactory()
        actor = MembershipFactory(organization=partner).user
        here = DelegationFactory(partner=partner, scopes=[Scope.OBTAIN_KEYS]).customer
        other = DelegationFactory(partner=partner, scopes=[Scope.VIEW_LICENSES]).customer
        code = _notification_of(other, setup).code
    else:  # the actor's other organization: genuine once, no longer open
        other = MembershipFactory(user=actor, role=Membership.Role.MEMBER).organization
        notification = _notification_of(other, setup)
        (_expire if case == "expired_elsewhere" else _use_up)(notification)
        code = notification.code
    found = notification_lookup(code=code, actor=actor, organization=here)
    assert found.notification is None and found.elsewhere is None and found.closed is None
    assert found.failed
