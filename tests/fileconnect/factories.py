"""Release files are added by release_file_add only (it computes checksum and signature), so
the helpers here go through it too."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any, cast

from fileconnect.models import ReleaseFile
from fileconnect.services import release_file_add
from licensing.models import License, LicenseShare, ProductVersion
from portal.models import Membership, User
from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory
from tests.portal.factories import MembershipFactory


def add_file(
    version: ProductVersion,
    content: bytes = b"installer bytes\n" * 64,
    *,
    platform: str = "Windows x64",
    name: str = "setup.exe",
    **options: Any,
) -> ReleaseFile:
    return release_file_add(
        version=version,
        platform=platform,
        source=io.BytesIO(content),
        filename=name,
        actor=None,
        **options,
    )


def version_of(product: Any, name: str, released_on: date) -> ProductVersion:
    return cast(
        ProductVersion,
        ProductVersionFactory(product=product, version=name, released_on=released_on),
    )


def member(role: str = "admin", **options: Any) -> Membership:
    return cast(Membership, MembershipFactory(role=role, **options))


def license_of(
    membership: Membership, version: ProductVersion, *, start: date, end: date, **options: Any
) -> License:
    return cast(
        License,
        LicenseFactory(
            owner=membership.organization,
            version=version,
            maintenance_start=start,
            maintenance_end=end,
            **options,
        ),
    )


def share(license: License, user: User, access: str = "read") -> LicenseShare:
    return LicenseShare.objects.create(license=license, email=user.email, user=user, access=access)


class Catalog:
    """A product with three versions, a year apart, each with one file (two for 15.0)."""

    def __init__(self) -> None:
        self.product = ProductFactory(name="Endpoint Shield", sku="ESH")
        self.v14 = version_of(self.product, "14.0", date(2024, 3, 1))
        self.v15 = version_of(self.product, "15.0", date(2025, 3, 1))
        self.v16 = version_of(self.product, "16.0", date(2026, 3, 1))
        self.f14 = add_file(self.v14, b"fourteen" * 100, name="esh-14.exe")
        self.f15 = add_file(self.v15, b"fifteen" * 100, name="esh-15.exe")
        self.f15_linux = add_file(
            self.v15, b"fifteen-linux" * 100, platform="Linux", name="esh-15.tar.gz"
        )
        self.f16 = add_file(self.v16, b"sixteen" * 100, name="esh-16.exe")

    def license(self, membership: Membership, version: ProductVersion, **dates: date) -> License:
        """A license whose maintenance, by default, covers 15.0's release but not 16.0's."""
        start = dates.get("start", date(2024, 6, 1))
        end = dates.get("end", date(2025, 6, 1))
        return license_of(membership, version, start=start, end=end)


def days_from_today(days: int) -> date:
    return date.today() + timedelta(days=days)
