"""A HEAD is answered wherever a GET is: a link checker, a monitor or a browser's prefetch that
asked for the headers of the signing key, a license file or a FileConnect page got 405 (the
views were require_GET; Django's require_safe takes GET and HEAD)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from portal.models import Membership
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import (
    PartnerFactory,
    VoucherBatchFactory,
    convert_separately,
    vouchers,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pages() -> dict[str, Any]:
    customer = MembershipFactory(role=Membership.Role.ADMIN)
    license = LicenseFactory(owner=customer.organization)
    conversion = convert_separately(customer, [vouchers(1)[0].code]).conversion
    partner = MembershipFactory(role=Membership.Role.ADMIN, organization=PartnerFactory())
    batch = VoucherBatchFactory(oem=partner.organization)
    return {
        "signing-key-well-known": (None, []),
        "signing-key": (None, []),
        "license-file": (customer, [license.pk]),
        "fileconnect": (customer, []),
        "fileconnect-license": (customer, [license.pk]),
        "fileconnect-log": (customer, []),
        "voucher-conversion": (customer, [conversion.pk]),
        "voucher-conversion-zip": (customer, [conversion.pk]),
        "voucher-batches": (partner, []),
        "voucher-batch": (partner, [batch.pk]),
    }


@pytest.mark.parametrize(
    "name",
    [
        "signing-key-well-known",
        "signing-key",
        "license-file",
        "fileconnect",
        "fileconnect-license",
        "fileconnect-log",
        "voucher-conversion",
        "voucher-conversion-zip",
        "voucher-batches",
        "voucher-batch",
    ],
)
def test_a_head_gets_the_get_s_status_and_headers_without_a_body(
    client: Client, pages: dict[str, Any], name: str
) -> None:
    membership, args = pages[name]
    if membership is not None:
        client.force_login(membership.user)
    url = reverse(name, args=args)

    get, head = client.get(url), client.head(url)

    assert get.status_code == 200
    assert head.status_code == 200
    assert head["Content-Type"] == get["Content-Type"]
    assert head.content == b""
