"""Staff read the admin in their language: every column and filter it shows is named by a
translatable verbose_name, not by the field's Python name ("Actor email", "Por action")."""

from __future__ import annotations

import pytest
from django.db.models import Model
from django.utils.functional import Promise

from portal.models import AuditEvent, Delegation, Invitation, Membership, OutboundEmail
from upgrades.models import UpgradeLine, UpgradeNotice, UpgradeNotification, UpgradeRedemption


@pytest.mark.parametrize(
    "model",
    [AuditEvent, OutboundEmail, Delegation, Invitation, Membership, UpgradeNotice],
    ids=lambda model: model.__name__,
)
def test_every_field_has_a_translatable_name(model: type[Model]) -> None:
    unnamed = [
        field.name
        for field in model._meta.concrete_fields
        if not field.primary_key
        and field.name != "token"  # never shown: secret
        and not isinstance(field.verbose_name, Promise)
    ]
    assert unnamed == []


@pytest.mark.parametrize(
    ("model", "name"),
    [
        (UpgradeNotification, "organization"),
        (UpgradeLine, "notification"),
        (UpgradeRedemption, "line"),
        (UpgradeRedemption, "license"),
        (UpgradeRedemption, "user"),
    ],
)
def test_upgrade_columns_have_translatable_names(model: type[Model], name: str) -> None:
    assert isinstance(model._meta.get_field(name).verbose_name, Promise)
