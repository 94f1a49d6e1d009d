"""The catalog staff edit in admin: products and their versions, audited before and after."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.translation import gettext as _

from portal.models import User
from portal.services import staff_edit_save

from ..models import Product, ProductVersion, SupportRegistration
from .issue import LicensingError

# What a published version's customers were told, and what decided who was told (upgrade
# eligibility counts maintenance against the release date): fixed once it is published.
PUBLISHED_VERSION_FIXED = ("released_on",)
# A version stays with the product it was made for: moving it would move its serial numbers,
# licenses and downloads to another product.
VERSION_FIXED = ("product",)


def product_staff_change(*, product: Product, fields: Sequence[str], actor: User | None) -> Product:
    """Saves the `fields` staff changed on a product in admin (node-locking, the rehost
    limit: rules every license of it follows), audited with each field's before and after."""
    return staff_edit_save(
        edited=product,
        fields=fields,
        actor=actor,
        action="product.changed",
        details=lambda locked: {"sku": locked.sku},
    )


def version_staff_change(
    *, version: ProductVersion, fields: Sequence[str], actor: User | None
) -> ProductVersion:
    """Saves the `fields` staff changed on a product version in admin, audited with each
    field's before and after; a version keeps its product, a published one its release date."""
    return staff_edit_save(
        edited=version,
        fields=fields,
        actor=actor,
        action="version.changed",
        details=lambda locked: {"product": locked.product.sku, "version": locked.version},
        check=_version_change_check,
    )


def _version_change_check(locked: ProductVersion, changes: dict[str, Any]) -> None:
    if set(changes) & set(VERSION_FIXED):
        raise LicensingError(
            _(
                "A version stays with the product it was made for. To offer it under another "
                "product, add a version to that product."
            )
        )
    # Checked under the lock: published between the page and the save, it is refused too.
    if locked.published_at is not None and set(changes) & set(PUBLISHED_VERSION_FIXED):
        raise LicensingError(
            _(
                "This version is published: its release date decided which customers were "
                "notified of the upgrade, and can no longer change."
            )
        )


def registration_staff_change(
    *, registration: SupportRegistration, fields: Sequence[str], actor: User | None
) -> SupportRegistration:
    """Saves the `fields` staff corrected on a support registration in admin, audited with each
    field's before and after (every license using the row reads the correction)."""
    return staff_edit_save(
        edited=registration,
        fields=fields,
        actor=actor,
        action="registration.changed",
        organization=lambda locked: locked.organization,
    )
