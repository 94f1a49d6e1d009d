"""Keys drawn down from a contract are kept current through the contract: a published version
offers them no version upgrade (as Get a key offers them no paid upgrade or renewal).

The one home of these cases (tests/upgrades had a copy of them)."""

from __future__ import annotations

import secrets
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from enterprise_flex.services import DrawdownRequest, drawdown_create
from licensing.models import License
from portal.invariants import invariants_check
from tests.enterprise_flex.factories import World, make_world
from tests.licensing.factories import ProductVersionFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeLine, UpgradeNotification
from upgrades.selectors import open_lines, open_notifications, publication_preview
from upgrades.services import UpgradeError, notifications_create, upgrade_redeem, version_publish

pytestmark = pytest.mark.django_db


def _draw_down(world: World, quantity: int = 5) -> License:
    return drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=quantity),
        actor=world.contract_user,
        token=secrets.token_urlsafe(8),
    ).license


def test_enterprise_flexible_keys_are_upgraded_through_the_contract_not_a_notification(
    client,
) -> None:  # type: ignore[no-untyped-def]
    # A version published after a drawdown gave the EF key a notification line; upgrading part
    # of it made the drawdown's license smaller than the drawdown (check_invariants then
    # failed) and a key for a version the contract does not have, outside its catalog and
    # true-up, that a renewal serial could extend.
    old, new = catalog()
    world = make_world(version=old, committed_quantity=100)
    ef_key = _draw_down(world)
    assert ef_key.maintenance_end >= new.released_on
    bought = licensed(world.contract.organization, old)  # beside it, a key from a serial

    assert publication_preview(version=new).licenses == 1
    notifications_create(version=new, today=timezone.localdate())
    assert list(UpgradeLine.objects.values_list("source_license", flat=True)) == [bought.pk]

    # A line made before this rule: neither offered nor redeemable.
    notification = UpgradeNotification.objects.get()
    line = UpgradeLine.objects.create(
        notification=notification, source_license=ef_key, eligible_quantity=5, remaining_quantity=5
    )
    assert list(open_lines(notification)) == [UpgradeLine.objects.get(source_license=bought)]
    pending = open_notifications(organization=world.contract.organization).get()
    assert [open_line.source_license for open_line in pending.open_lines] == [bought]
    with pytest.raises(UpgradeError, match="Enterprise Flexible"):
        upgrade_redeem(
            line_id=line.pk,
            quantity=2,
            organization=world.contract.organization,
            registration={},
            actor=world.contract_user,
            token="t",
        )
    ef_key.refresh_from_db()
    assert (ef_key.quantity, ef_key.status) == (5, License.Status.ACTIVE)
    assert not list(invariants_check())
    # Its page offers no free upgrade either (nor says renewing would make it eligible).
    version_publish(version=new, actor=None)
    client.force_login(world.super_user)
    page = client.get(reverse("license-detail", kwargs={"pk": ef_key.pk})).content.decode()
    assert "Version 15.0" not in page
    page = client.get(reverse("license-detail", kwargs={"pk": bought.pk})).content.decode()
    assert "Version 15.0 is available for this license at no cost" in page


def test_an_organization_with_only_drawn_down_keys_gets_no_notification() -> None:
    world = make_world()
    ef_key = _draw_down(world)
    newer = ProductVersionFactory(
        product=world.line.version.product, version="99.0", released_on=date.today()
    )
    assert publication_preview(version=newer).licenses == 0
    created = notifications_create(version=newer, today=date.today())
    assert (created.notifications, created.lines) == (0, 0)
    assert not UpgradeNotification.objects.exists()
    assert not UpgradeLine.objects.filter(source_license=ef_key).exists()
    assert not list(invariants_check())
