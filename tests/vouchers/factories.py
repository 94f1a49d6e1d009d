from __future__ import annotations

from typing import Any

import factory

from licensing.codes import generate_code
from portal.models import Membership, Organization, OutboundEmail
from tests.licensing.factories import REGISTRATION, ProductVersionFactory
from tests.portal.factories import OrganizationFactory
from vouchers.models import Voucher, VoucherBatch
from vouchers.services import ConversionResult, vouchers_convert


class PartnerFactory(OrganizationFactory):
    name = factory.Sequence(lambda n: f"OEM Hardware {n} S.A.")
    kind = Organization.Kind.PARTNER


class VoucherBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VoucherBatch

    oem = factory.SubFactory(PartnerFactory)
    version = factory.SubFactory(ProductVersionFactory)
    quantity_per_voucher = 5
    maintenance_months = 12


class VoucherFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Voucher

    code = factory.LazyFunction(generate_code)
    batch = factory.SubFactory(VoucherBatchFactory)


def vouchers(count: int, **batch_fields: Any) -> list[Voucher]:
    """`count` open vouchers of one new batch, created in one statement."""
    batch = VoucherBatchFactory(**batch_fields)
    return Voucher.objects.bulk_create(
        [Voucher(code=generate_code(), batch=batch) for _ in range(count)]
    )


def convert_separately(membership: Membership, codes: list[str]) -> ConversionResult:
    """`codes` converted through the service, one license each, by the member for its
    organization with the test registration (what the wizard's confirm step calls)."""
    return vouchers_convert(
        codes=codes,
        organization=membership.organization,
        registration=REGISTRATION,
        acting_user=membership.user,
        combine=False,
    )


def conversion_email_to(address: str) -> OutboundEmail:
    """The body of the conversion email that went to `address`: its recipients read one body
    or another by the links they can open (a technical contact who is no member, none)."""
    (email,) = [
        email
        for email in OutboundEmail.objects.filter(template="vouchers_converted")
        if address in email.to
    ]
    return email


def with_typo(code: str) -> str:
    """The code with one character changed: its check character no longer matches."""
    from licensing.codes import ALPHABET

    index = 3
    wrong = next(ch for ch in ALPHABET if ch != code[index])
    return code[:index] + wrong + code[index + 1 :]
