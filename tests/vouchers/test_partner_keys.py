"""A code the customer already converted names its license: the whole key only for who may read
it. A channel partner that may only obtain keys reads the keys it obtained, and the others
masked, as Get a key masks a serial's: in the preview, the stored result and its page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from licensing.models import License
from licensing.templatetags.licensing_tags import mask_key
from portal.models import Delegation, Membership
from portal.policy import Scope
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory
from tests.vouchers.factories import VoucherFactory, convert_separately
from tests.vouchers.wizard import submit_codes, walk
from vouchers.models import VoucherConversion
from vouchers.selectors import Reason

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN)


@pytest.fixture
def partner_user() -> Membership:
    return MembershipFactory(role=Membership.Role.MEMBER, organization=PartnerFactory())


def _delegation(customer: Membership, partner_user: Membership, *scopes: str) -> Delegation:
    return DelegationFactory(
        customer=customer.organization, partner=partner_user.organization, scopes=list(scopes)
    )


def _act_for(client: Client, partner_user: Membership, delegation: Delegation) -> None:
    client.force_login(partner_user.user)
    assert client.post(reverse("partner-act", args=[delegation.pk])).status_code == 302


def _preview(client: Client, *codes: str) -> str:
    assert submit_codes(client, "\n".join(codes)).status_code == 302
    return client.get(reverse("voucher-center-preview")).content.decode()


def _customers_key(customer: Membership) -> tuple[str, str]:
    """A voucher the customer converted itself, and its license's key."""
    voucher = VoucherFactory()
    (license,) = convert_separately(customer, [voucher.code]).licenses
    return voucher.code, license.key


def test_an_obtain_keys_partner_reads_the_customers_key_masked(
    client, customer, partner_user
) -> None:  # type: ignore[no-untyped-def]
    code, key = _customers_key(customer)
    _act_for(client, partner_user, _delegation(customer, partner_user, Scope.OBTAIN_KEYS))
    assert client.get(reverse("license-list")).status_code == 403

    page = _preview(client, code)
    assert "Your organization already converted this voucher" in page
    assert key not in page
    assert mask_key(key) in page


def test_its_conversion_stores_and_shows_the_key_masked(
    client, customer, partner_user, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    code, key = _customers_key(customer)
    _act_for(client, partner_user, _delegation(customer, partner_user, Scope.OBTAIN_KEYS))
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(client, "\n".join([VoucherFactory().code, code]))
    assert response.status_code == 302
    conversion = VoucherConversion.objects.get(created_by=partner_user.user)
    (refusal,) = conversion.refused
    assert refusal["reason"] == Reason.REDEEMED_BY_YOU
    assert refusal["params"] == {"key": mask_key(key)}
    page = client.get(response["Location"]).content.decode()
    assert mask_key(key) in page and key not in page
    # The key the partner obtained is on the page, whole.
    assert License.objects.get(issued_by=partner_user.user).key in page


def test_a_result_stored_with_the_whole_key_is_masked_when_shown(
    client, customer, partner_user, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # Conversions planned before keys were masked stored them whole.
    code, key = _customers_key(customer)
    _act_for(client, partner_user, _delegation(customer, partner_user, Scope.OBTAIN_KEYS))
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(client, "\n".join([VoucherFactory().code, code]))
    conversion = VoucherConversion.objects.get(created_by=partner_user.user)
    refused = {"code": code, "reason": Reason.REDEEMED_BY_YOU, "params": {"key": key}}
    VoucherConversion.objects.filter(pk=conversion.pk).update(result={"refused": [refused]})

    page = client.get(response["Location"]).content.decode()
    assert mask_key(key) in page and key not in page
    # The customer's administrator may read its keys: the page it opens shows it whole.
    client.force_login(customer.user)
    assert key in client.get(response["Location"]).content.decode()


def test_the_partner_reads_whole_the_key_it_obtained_itself(
    client, customer, partner_user, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    _act_for(client, partner_user, _delegation(customer, partner_user, Scope.OBTAIN_KEYS))
    voucher = VoucherFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert walk(client, voucher.code).status_code == 302
    key = License.objects.get(issued_by=partner_user.user).key
    assert key in _preview(client, voucher.code)


@pytest.mark.parametrize("scopes", [[Scope.VIEW_LICENSES, Scope.OBTAIN_KEYS]])
def test_a_partner_that_may_view_licenses_reads_it_whole(
    client, customer, partner_user, scopes
) -> None:  # type: ignore[no-untyped-def]
    code, key = _customers_key(customer)
    _act_for(client, partner_user, _delegation(customer, partner_user, *scopes))
    assert key in _preview(client, code)
