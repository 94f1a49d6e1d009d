from __future__ import annotations

from datetime import date, timedelta

from licensing.models import ProductVersion
from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory

RELEASE = date.today() - timedelta(days=10)


def catalog() -> tuple[ProductVersion, ProductVersion]:
    """A product with an old version and a new one released ten days ago."""
    product = ProductFactory(name="Endpoint Shield")
    old = ProductVersionFactory(product=product, version="14.3", released_on=date(2024, 1, 10))
    new = ProductVersionFactory(product=product, version="15.0", released_on=RELEASE)
    return old, new


def licensed(owner, version, *, end=RELEASE + timedelta(days=200), quantity=10, **kw):  # type: ignore[no-untyped-def]
    return LicenseFactory(
        owner=owner, version=version, maintenance_end=end, quantity=quantity, **kw
    )
