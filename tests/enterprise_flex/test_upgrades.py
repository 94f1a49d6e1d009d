"""Keys drawn down from a contract are kept current through the contract: a published version
offers them no version upgrade (as Get a key offers them no paid upgrade or renewal)."""

from __future__ import annotations

from datetime import date

import pytest

from enterprise_flex.invariants import lines_add_up
from enterprise_flex.services import DrawdownRequest, drawdown_create
from licensing.models import License
from tests.enterprise_flex.factories import make_world
from tests.licensing.factories import REGISTRATION, ProductVersionFactory
from upgrades.models import UpgradeLine, UpgradeNotification
from upgrades.selectors import publication_preview
from upgrades.services import UpgradeError, notifications_create, upgrade_redeem

pytestmark = pytest.mark.django_db


def test_a_published_version_offers_drawn_down_keys_no_upgrade() -> None:
    # They were offered one: upgrading moved seats out of the drawdown's license (which then no
    # longer held the drawdown's quantity: check_invariants failed) into a key for a version
    # the contract does not have, outside its catalog and true-up.
    world = make_world()
    drawdown = drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=5),
        actor=world.contract_user,
        token="t",
    )
    newer = ProductVersionFactory(
        product=world.line.version.product, version="99.0", released_on=date.today()
    )
    assert publication_preview(version=newer).licenses == 0
    created = notifications_create(version=newer, today=date.today())
    assert (created.notifications, created.lines) == (0, 0)
    assert not UpgradeLine.objects.filter(source_license=drawdown.license).exists()
    assert list(lines_add_up(None)) == []  # type: ignore[arg-type]


def test_an_upgrade_line_made_before_for_a_drawn_down_key_is_refused() -> None:
    world = make_world()
    drawdown = drawdown_create(
        contract=world.contract,
        request=DrawdownRequest(line_id=world.line.pk, site_id=world.site.pk, quantity=5),
        actor=world.contract_user,
        token="t",
    )
    newer = ProductVersionFactory(
        product=world.line.version.product, version="99.0", released_on=date.today()
    )
    notification = UpgradeNotification.objects.create(
        organization=world.contract.organization,
        target_version=newer,
        expires_on=date(2099, 1, 1),
    )
    line = UpgradeLine.objects.create(
        notification=notification,
        source_license=drawdown.license,
        eligible_quantity=5,
        remaining_quantity=5,
    )
    with pytest.raises(UpgradeError, match="Enterprise Flexible"):
        upgrade_redeem(
            line_id=line.pk,
            quantity=2,
            organization=world.contract.organization,
            registration=REGISTRATION,
            actor=world.contract_user,
            token="u",
        )
    assert License.objects.get(pk=drawdown.license.pk).quantity == 5
    assert list(lines_add_up(None)) == []  # type: ignore[arg-type]
