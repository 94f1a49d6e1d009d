from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import factory

from licensing.models import License, Product, ProductVersion, SerialNumber, SupportRegistration
from tests.portal.factories import OrganizationFactory


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"PRD-{n:04d}")
    name = factory.Sequence(lambda n: f"Endpoint Shield {n}")
    family = "Endpoint"


class ProductVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductVersion

    product = factory.SubFactory(ProductFactory)
    version = factory.Sequence(lambda n: f"14.{n}")
    released_on = date(2026, 1, 15)


class SerialNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SerialNumber

    version = factory.SubFactory(ProductVersionFactory)
    kind = SerialNumber.Kind.NEW
    quantity = 25
    maintenance_months = 12


class SupportRegistrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupportRegistration

    organization = factory.SubFactory(OrganizationFactory)
    company = factory.LazyAttribute(lambda o: o.organization.name)
    address = "Rua Augusta 500"
    country = "BR"
    primary_name = "Paula Primary"
    primary_email = "paula@customer.example"
    primary_phone = "+55 11 5555-0100"
    technical_name = "Tiago Tech"
    technical_email = "tiago@customer.example"
    technical_phone = "+55 11 5555-0101"


REGISTRATION = {
    "company": "Acme Manufacturing",
    "address": "Av. Paulista 1000",
    "country": "BR",
    "primary_name": "Paula Primary",
    "primary_email": "paula@acme.example",
    "primary_phone": "+55 11 5555-0100",
    "technical_name": "Tiago Tech",
    "technical_email": "tiago@acme.example",
    "technical_phone": "+55 11 5555-0101",
}


class LicenseFactory(factory.django.DjangoModelFactory):
    """Licenses are minted by license_issue only, so the factory goes through it too."""

    class Meta:
        model = "licensing.License"

    version = factory.SubFactory(ProductVersionFactory)
    owner = factory.SubFactory(OrganizationFactory)
    quantity = 10
    maintenance_start = factory.LazyFunction(lambda: date.today() - timedelta(days=100))
    maintenance_end = factory.LazyFunction(lambda: date.today() + timedelta(days=265))
    host_id = ""
    registration = factory.SubFactory(
        SupportRegistrationFactory, organization=factory.SelfAttribute("..owner")
    )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):  # type: ignore[no-untyped-def]
        from licensing.services import IssueSource, license_issue

        version = kwargs.pop("version")
        source = IssueSource(
            kind=kwargs.pop("source", "serial"),
            ref=kwargs.pop("source_ref", "TEST"),
            version=version,
            quantity=kwargs.pop("quantity"),
            maintenance_start=kwargs.pop("maintenance_start"),
            maintenance_end=kwargs.pop("maintenance_end"),
            host_id=kwargs.pop("host_id"),
        )
        return license_issue(
            source=source,
            owner=kwargs.pop("owner"),
            registration=kwargs.pop("registration"),
            acting_user=kwargs.pop("acting_user", None),
            notify=False,
        )


class ReadCounter:
    """A file that counts the bytes read from it: the previews read uploads themselves."""

    def __init__(self, upload) -> None:  # type: ignore[no-untyped-def]
        self.upload, self.total = upload, 0

    def read(self, size: int = -1) -> bytes:
        data = self.upload.read(size)
        self.total += len(data)
        return data


def emailed_file_quantity(row, license) -> int:  # type: ignore[no-untyped-def]
    """The quantity the signed license file attached to outbox `row` states, verified."""
    import base64

    from licensing.licensefile import verify_license_file
    from licensing.signing import get_public_key

    (attachment,) = row.attachments
    assert attachment["filename"] == license.file_name
    payload = verify_license_file(
        base64.b64decode(attachment["content"]).decode(),
        license_key=license.key,
        public_key=get_public_key(),
    )
    return int(payload["data"]["attributes"]["metadata"]["quantity"])


@dataclass(frozen=True)
class PartnerObtained:
    """A customer's licenses a partner obtained, each naming its own technical contact: every
    key emailed for them is copied to the customer's administrator."""

    admin: Any  # the customer's administrator (a Membership), copied
    member: Any  # a member of the customer (a User) who is not
    licenses: list[Any]


def partner_obtained_licenses(count: int) -> PartnerObtained:
    from portal.models import Membership
    from tests.portal.factories import MembershipFactory, PartnerFactory

    admin = MembershipFactory(role=Membership.Role.ADMIN)
    customer = admin.organization
    member = MembershipFactory(organization=customer, role=Membership.Role.MEMBER).user
    licenses = [
        LicenseFactory(
            owner=customer,
            registration=SupportRegistrationFactory(
                organization=customer, technical_email=f"contact{n}@customer.example"
            ),
        )
        for n in range(count)
    ]
    License.objects.filter(pk__in=[lic.pk for lic in licenses]).update(partner=PartnerFactory())
    return PartnerObtained(admin=admin, member=member, licenses=licenses)
