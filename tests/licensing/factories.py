from __future__ import annotations

from datetime import date

import factory

from licensing.models import Product, ProductVersion, SerialNumber, SupportRegistration
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
    country = "Brazil"
    primary_name = "Paula Primary"
    primary_email = "paula@customer.example"
    primary_phone = "+55 11 5555-0100"
    technical_name = "Tiago Tech"
    technical_email = "tiago@customer.example"
    technical_phone = "+55 11 5555-0101"


REGISTRATION = {
    "company": "Acme Manufacturing",
    "address": "Av. Paulista 1000",
    "country": "Brazil",
    "primary_name": "Paula Primary",
    "primary_email": "paula@acme.example",
    "primary_phone": "+55 11 5555-0100",
    "technical_name": "Tiago Tech",
    "technical_email": "tiago@acme.example",
    "technical_phone": "+55 11 5555-0101",
}
