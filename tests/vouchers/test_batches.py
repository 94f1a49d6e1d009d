"""Batches: code generation (unique among vouchers and serials), and the OEM partner's page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing.codes import canonical_code
from tests.licensing.factories import REGISTRATION, ProductVersionFactory, SerialNumberFactory
from tests.portal.factories import MembershipFactory, OrganizationFactory
from tests.vouchers.factories import PartnerFactory, VoucherFactory, vouchers
from vouchers import services
from vouchers.models import Voucher
from vouchers.services import (
    VoucherError,
    voucher_batch_create,
    voucher_batch_void,
    vouchers_convert,
)

pytestmark = pytest.mark.django_db


def test_generated_codes_carry_120_bits_and_a_check_character() -> None:
    batch = voucher_batch_create(oem=PartnerFactory(), version=ProductVersionFactory(), count=50)
    for code in batch.vouchers.values_list("code", flat=True):
        assert len(code.replace("-", "")) == 25  # 24 random base32 characters (120 bits) + check
        assert canonical_code(code.lower()) == code


def test_codes_never_repeat_a_voucher_or_a_serial(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    voucher = VoucherFactory()
    fresh = iter([serial.code, voucher.code, "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA", "B", "C"])
    monkeypatch.setattr(services, "generate_code", lambda: next(fresh))
    assert sorted(services.voucher_codes_generate(count=3)) == [
        "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA",
        "B",
        "C",
    ]


def test_only_partners_get_batches() -> None:
    with pytest.raises(VoucherError, match="not a partner organization"):
        voucher_batch_create(oem=OrganizationFactory(), version=ProductVersionFactory(), count=1)


def test_voiding_twice_is_harmless() -> None:
    batch = vouchers(2)[0].batch
    assert voucher_batch_void(batch=batch, acting_user=None) == 2
    assert voucher_batch_void(batch=batch, acting_user=None) == 0


# -- the OEM partner's page --------------------------------------------------------------------


@pytest.fixture
def oem_member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory(organization=PartnerFactory())
    client.force_login(membership.user)
    return membership


def test_partner_sees_its_batches_with_counts(client, oem_member) -> None:  # type: ignore[no-untyped-def]
    oem = oem_member.organization
    yesterday = timezone.localdate() - timedelta(days=1)
    current = vouchers(6, oem=oem, label="Q3 servers")
    expired = vouchers(2, oem=oem, expires_on=yesterday)
    vouchers(3)  # another partner's batch
    Voucher.objects.filter(pk=current[5].pk).update(status=Voucher.Status.VOID)
    customer = MembershipFactory()
    vouchers_convert(
        codes=[v.code for v in current[:2]],
        organization=customer.organization,
        registration=REGISTRATION,
        acting_user=customer.user,
    )
    response = client.get(reverse("voucher-batches"))
    batches = {b.pk: b for b in response.context["batches"]}
    assert set(batches) == {current[0].batch_id, expired[0].batch_id}
    counts = batches[current[0].batch_id]
    assert (counts.total_count, counts.redeemed_count, counts.open_count) == (6, 2, 3)
    assert (counts.void_count, counts.expired_count) == (1, 0)
    old = batches[expired[0].batch_id]
    assert (old.open_count, old.expired_count) == (0, 2)
    assert "Q3 servers" in response.content.decode()


def test_batches_table_stacks_on_a_phone(client, oem_member) -> None:  # type: ignore[no-untyped-def]
    """Nine columns: on a phone each batch becomes a card, every count under its label."""
    vouchers(2, oem=oem_member.organization)
    page = client.get(reverse("voucher-batches")).content.decode()
    head, table = page.split('data-testid="voucher-batches"')
    assert "table-stack" in head.rsplit("<table", 1)[1]
    for label in ("Batch", "Product", "Vouchers", "Converted", "Open", "Expired", "Void"):
        assert f'data-label="{label}"' in table.split("</table>")[0]


def test_batch_page_names_redeeming_organizations_and_nothing_more(client, oem_member) -> None:  # type: ignore[no-untyped-def]
    batch_vouchers = vouchers(3, oem=oem_member.organization)
    customer = MembershipFactory()
    result = vouchers_convert(
        codes=[v.code for v in batch_vouchers[:2]],
        organization=customer.organization,
        registration=REGISTRATION,
        acting_user=customer.user,
    )
    page = client.get(reverse("voucher-batch", kwargs={"pk": batch_vouchers[0].batch_id}))
    content = page.content.decode()
    assert customer.organization.name in content
    for secret in [
        customer.organization.account_number,
        customer.user.email,
        result.licenses[0].key,
        REGISTRATION["technical_email"],
        batch_vouchers[0].code,
    ]:
        assert secret not in content


def test_other_partners_batches_are_404(client, oem_member) -> None:  # type: ignore[no-untyped-def]
    foreign = vouchers(1)[0].batch
    assert client.get(reverse("voucher-batch", kwargs={"pk": foreign.pk})).status_code == 404


def test_customers_have_no_batch_pages(client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(MembershipFactory().user)
    assert client.get(reverse("voucher-batches")).status_code == 404


def test_batch_pages_queries(client, oem_member, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    for _ in range(10):
        vouchers(5, oem=oem_member.organization)
    with django_assert_max_num_queries(8):
        assert client.get(reverse("voucher-batches")).status_code == 200


def test_node_locked_products_are_not_sold_as_vouchers() -> None:
    version = ProductVersionFactory(product__node_locked=True)
    with pytest.raises(VoucherError, match="node-locked"):
        voucher_batch_create(oem=PartnerFactory(), version=version, count=1)


@pytest.mark.parametrize(("language", "grouped"), [("en", "1,200"), ("pt-br", "1.200")])
def test_batch_counts_are_grouped_as_the_reader_writes_numbers(
    client, oem_member, language, grouped
) -> None:  # type: ignore[no-untyped-def]
    batch = vouchers(1200, oem=oem_member.organization, quantity_per_voucher=2500)[0].batch
    customer = MembershipFactory()
    vouchers_convert(
        codes=list(batch.vouchers.values_list("code", flat=True)[:1100]),
        organization=customer.organization,
        registration=REGISTRATION,
        acting_user=customer.user,
    )
    quantity, converted = ("2,500", "1,100") if language == "en" else ("2.500", "1.100")
    for url in (reverse("voucher-batches"), reverse("voucher-batch", args=[batch.pk])):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert grouped in page and quantity in page and converted in page
        assert "1200" not in page and "1100" not in page


def test_a_refused_quantity_names_its_limit_grouped_as_the_reader_writes_numbers() -> None:
    from django.utils import translation

    with translation.override("pt-br"), pytest.raises(VoucherError) as refused:
        voucher_batch_create(
            oem=PartnerFactory(),
            version=ProductVersionFactory(),
            count=1,
            quantity_per_voucher=1_000_001,
        )
    assert "1.000.000" in str(refused.value)
