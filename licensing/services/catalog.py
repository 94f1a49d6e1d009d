"""The catalog staff edit in admin: products and their versions, audited before and after."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils.translation import gettext as _

from portal.models import User
from portal.services import audit_record, staff_changes

from ..models import Product, ProductVersion, SupportRegistration
from .issue import LicensingError

# What a published version's customers were told, and what decided who was told (upgrade
# eligibility counts maintenance against the release date): fixed once it is published.
PUBLISHED_VERSION_FIXED = ("released_on",)
# A version stays with the product it was made for: moving it would move its serial numbers,
# licenses and downloads to another product.
VERSION_FIXED = ("product",)


@transaction.atomic
def product_staff_change(*, product: Product, fields: Sequence[str], actor: User | None) -> Product:
    """Saves the `fields` staff changed on a product in admin (node-locking, the rehost
    limit: rules every license of it follows), audited with each field's before and after."""
    locked = Product.objects.select_for_update().get(pk=product.pk)
    changes = staff_changes(stored=locked, edited=product, fields=fields)
    if not changes:
        return locked
    product.save(update_fields=list(changes))
    audit_record(
        action="product.changed",
        actor=actor,
        obj=product,
        details={"sku": product.sku, "changes": changes, "reason": "staff"},
    )
    return product


@transaction.atomic
def version_staff_change(
    *, version: ProductVersion, fields: Sequence[str], actor: User | None
) -> ProductVersion:
    """Saves the `fields` staff changed on a product version in admin, audited with each
    field's before and after; a published version keeps its release date."""
    locked = ProductVersion.objects.select_for_update().get(pk=version.pk)
    changes = staff_changes(stored=locked, edited=version, fields=fields)
    if not changes:
        return locked
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
    version.save(update_fields=list(changes))
    audit_record(
        action="version.changed",
        actor=actor,
        obj=version,
        details={
            "product": version.product.sku,
            "version": version.version,
            "changes": changes,
            "reason": "staff",
        },
    )
    return version


@transaction.atomic
def registration_staff_change(
    *, registration: SupportRegistration, fields: Sequence[str], actor: User | None
) -> SupportRegistration:
    """Saves the `fields` staff corrected on a support registration in admin, audited with each
    field's before and after (every license using the row reads the correction)."""
    locked = SupportRegistration.objects.select_for_update().get(pk=registration.pk)
    changes = staff_changes(stored=locked, edited=registration, fields=fields)
    if not changes:
        return locked
    registration.save(update_fields=list(changes))
    audit_record(
        action="registration.changed",
        actor=actor,
        organization=registration.organization,
        obj=registration,
        details={"changes": changes, "reason": "staff"},
    )
    return registration
