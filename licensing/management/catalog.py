"""What the catalog-related management commands share."""

from __future__ import annotations

from django.core.management.base import CommandError

from licensing.models import ProductVersion


def product_version(sku: str, version: str) -> ProductVersion:
    """The version named on a command line, or a CommandError saying what to do."""
    found = (
        ProductVersion.objects.select_related("product")
        .filter(product__sku=sku, version=version)
        .first()
    )
    if found is None:
        raise CommandError(f"No version {version} of product {sku}. Create it in admin first.")
    return found
