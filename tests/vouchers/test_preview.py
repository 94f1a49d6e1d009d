"""Step 1: every code checked in one lookup, with a reason for each one that cannot be used.

Failed codes spend the same failed-attempt budget as serial numbers, so the Voucher center
cannot be used to enumerate codes.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from licensing.codes import generate_code
from portal.models import AuditEvent
from tests.licensing.factories import ProductVersionFactory, SerialNumberFactory
from tests.licensing.wizard import post_step
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import VoucherBatchFactory, VoucherFactory, vouchers, with_typo
from tests.vouchers.wizard import form_errors, state_token, submit_codes
from vouchers.models import Voucher
from vouchers.selectors import Reason, reason_message, vouchers_check
from vouchers.services import vouchers_convert

pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 1)


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def check(member, *entries: str):  # type: ignore[no-untyped-def]
    return vouchers_check(
        entries=entries, organization=member.organization, actor=member.user, today=TODAY
    )


def reasons(member, *entries: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.reason for c in check(member, *entries)]


def test_usable_voucher_carries_product_and_quantity(member) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory(batch__quantity_per_voucher=9)
    (result,) = check(member, voucher.code)
    assert result.usable and result.reason == ""
    assert result.voucher == voucher and result.voucher.batch.quantity_per_voucher == 9


@pytest.mark.parametrize(
    "typed",
    [
        lambda c: c.lower(),
        lambda c: c.replace("-", ""),
        lambda c: c.replace("-", " "),
        lambda c: f"  {c.lower().replace('-', ' - ')}  ",
        lambda c: c.replace("0", "O").replace("1", "I"),  # Crockford reads O as 0, I as 1
    ],
)
def test_any_case_with_or_without_dashes_and_spaces(member, typed) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory()
    assert check(member, typed(voucher.code))[0].usable


def test_each_reason(member) -> None:  # type: ignore[no-untyped-def]
    other = MembershipFactory()
    taken = VoucherFactory()
    vouchers_convert(
        codes=[taken.code],
        organization=other.organization,
        registration=_registration(),
        acting_user=other.user,
    )
    mine = VoucherFactory()
    result = vouchers_convert(
        codes=[mine.code],
        organization=member.organization,
        registration=_registration(),
        acting_user=member.user,
    )
    cases = {
        with_typo(VoucherFactory().code): Reason.CHECK,
        "hello": Reason.MALFORMED,
        generate_code(): Reason.UNKNOWN,
        SerialNumberFactory().code: Reason.SERIAL,
        VoucherFactory(batch__expires_on=TODAY - timedelta(days=1)).code: Reason.EXPIRED,
        VoucherFactory(status=Voucher.Status.VOID).code: Reason.VOID,
        VoucherFactory(batch__voided_at=timezone.now()).code: Reason.VOID,
        taken.code: Reason.REDEEMED,
        mine.code: Reason.REDEEMED_BY_YOU,
        VoucherFactory(batch__version__product__node_locked=True).code: Reason.NODE_LOCKED,
        VoucherFactory(batch__expires_on=TODAY).code: "",  # the last day still counts
    }
    results = check(member, *cases)
    assert [r.reason for r in results] == list(cases.values())
    by_reason = {r.reason: r for r in results}
    assert result.licenses[0].key in by_reason[Reason.REDEEMED_BY_YOU].message
    assert "expired on " + (TODAY - timedelta(days=1)).isoformat() in by_reason["expired"].message
    # Another organization's conversion is not named.
    assert other.organization.name not in by_reason[Reason.REDEEMED].message


def test_duplicates_are_checked_once(member) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory()
    results = check(member, voucher.code, voucher.code.lower(), voucher.code.replace("-", ""))
    assert len(results) == 1


def _registration() -> dict[str, str]:
    from tests.licensing.factories import REGISTRATION

    return dict(REGISTRATION)


# -- through the page -------------------------------------------------------------------------


def preview_page(client) -> str:  # type: ignore[no-untyped-def]
    return client.get(reverse("voucher-center-preview")).content.decode()


def test_failed_codes_spend_the_serial_budget(client, member, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 10
    good = VoucherFactory()
    unknown = [generate_code() for _ in range(3)]
    submit_codes(client, "\n".join([*unknown, good.code]))
    # 3 spent here; 7 wrong serial numbers use up the rest of the same budget.
    client.get(reverse("get-a-key"))
    for _ in range(7):
        post_step(client, "serial", {"serial": generate_code()})
    response = submit_codes(client, good.code)
    errors = " ".join(form_errors(response)["__all__"])
    assert "Too many codes were not recognised" in errors
    assert re.search(r"try again in \d+ minutes", errors)


def test_a_code_not_checked_says_when_in_words_that_agree_and_whom_to_ask(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_SUPPORT_URL = ""
    settings.PORTAL_SUPPORT_EMAIL = "care@vendor.example"
    one = reason_message(Reason.NOT_CHECKED, {"minutes": 1})
    assert "try again in 1 minute. If you need help, contact" in one
    assert "1 minutes" not in one
    assert '<a href="mailto:care@vendor.example">care@vendor.example</a>' in one
    assert "try again in 7 minutes." in reason_message(Reason.NOT_CHECKED, {"minutes": 7})
    # Stored in a conversion's result as JSON: a value that is no number still reads well.
    assert "try again in 1 minute." in reason_message(Reason.NOT_CHECKED, {"minutes": "x"})
    with translation.override("pt-br"):
        assert "Se precisar de ajuda" in reason_message(Reason.NOT_CHECKED, {"minutes": 7})


def test_the_preview_links_whom_to_ask_about_codes_not_checked(client, member, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 3
    settings.PORTAL_SUPPORT_EMAIL = "care@vendor.example"
    entries = [*(generate_code() for _ in range(3)), VoucherFactory().code]
    assert submit_codes(client, "\n".join(entries)).status_code == 302
    page = preview_page(client)
    assert "Not checked: too many codes could not be used" in page
    assert '<a href="mailto:care@vendor.example">care@vendor.example</a>' in page


def test_codes_past_the_budget_are_not_revealed(client, member, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 3
    before = VoucherFactory()
    after = VoucherFactory()
    typo = with_typo(VoucherFactory().code)
    entries = [before.code, *(generate_code() for _ in range(3)), after.code, typo]
    response = submit_codes(client, "\n".join(entries))
    assert response.status_code == 302
    page = preview_page(client)
    assert "1 of 6 codes can be converted" in page
    assert page.count("Not checked: too many codes could not be used") == 1
    assert re.search(r"try again in \d+ minutes", page)
    assert "check the code for typos" in page  # typos need no lookup: still reported
    assert after.batch.version.product.name not in page
    assert AuditEvent.objects.filter(action="vouchers.rate_limited").count() == 1
    # And the limit now holds for the next submission, serials included.
    assert "Too many codes" in " ".join(form_errors(submit_codes(client, after.code))["__all__"])


def test_codes_your_organization_converted_do_not_count(client, member, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 2
    done = vouchers(5)
    vouchers_convert(
        codes=[v.code for v in done],
        organization=member.organization,
        registration=_registration(),
        acting_user=member.user,
    )
    for _ in range(3):  # the same file uploaded again, and again
        response = submit_codes(client, "\n".join(v.code for v in done))
        assert response.status_code == 302
    assert preview_page(client).count("Your organization already converted") == 5


def test_the_budget_is_per_user(client, member, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 2
    submit_codes(client, "\n".join(generate_code() for _ in range(3)))
    assert "Too many" in str(form_errors(submit_codes(client, generate_code())))
    other = MembershipFactory()
    client.force_login(other.user)
    assert submit_codes(client, VoucherFactory().code).status_code == 302


def test_preview_reflects_changes_since_step_one(client, member) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory()
    submit_codes(client, voucher.code)
    Voucher.objects.filter(pk=voucher.pk).update(status=Voucher.Status.VOID)
    assert "was cancelled" in preview_page(client)


def test_preview_table_reads_on_a_phone(client, member) -> None:  # type: ignore[no-untyped-def]
    """Each row becomes a card under its column names, and a code breaks only after a dash: in
    four columns on a phone the codes were cut after every few characters."""
    voucher = VoucherFactory()
    submit_codes(client, f"{voucher.code}\nNOT-A-CODE")
    html = preview_page(client)
    table = html[html.index('data-testid="voucher-preview"') - 80 : html.index("</table>")]
    assert "table-stack" in table
    assert "-<wbr>".join(voucher.code.split("-")) in table
    assert "text-break" not in table
    for label in ("Code", "Product", "Quantity", "Result"):
        assert f'data-label="{label}"' in table


# -- query counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [10, 200])
def test_check_is_one_lookup_whatever_the_number_of_codes(  # type: ignore[no-untyped-def]
    member, count, django_assert_max_num_queries
) -> None:
    version = ProductVersionFactory()
    codes = [v.code for v in vouchers(count // 2, version=version)]
    codes += [v.code for v in vouchers(count // 2, version=version, maintenance_months=24)]
    codes += [generate_code() for _ in range(5)]  # unknown: one more lookup, among serials
    with django_assert_max_num_queries(2):
        results = check(member, *codes)
    assert sum(r.usable for r in results) == count


@pytest.mark.parametrize("count", [10, 200])
def test_preview_pages_queries_do_not_grow_per_code(  # type: ignore[no-untyped-def]
    client, member, count, django_assert_max_num_queries
) -> None:
    batch = VoucherBatchFactory()
    codes = [v.code for v in vouchers(count, version=batch.version)]
    with django_assert_max_num_queries(12):
        assert submit_codes(client, "\n".join(codes)).status_code == 302
    with django_assert_max_num_queries(12):
        assert "codes can be converted" in preview_page(client)
    with django_assert_max_num_queries(12):
        client.post(
            reverse("voucher-center-preview"), {"combine": "on", "token": state_token(client)}
        )


def test_codes_not_checked_are_reported_and_never_converted(client, member, settings) -> None:  # type: ignore[no-untyped-def]
    from tests.vouchers.wizard import walk

    settings.PORTAL_SERIAL_ATTEMPTS_PER_10_MINUTES = 1
    before, after = VoucherFactory(), VoucherFactory()
    response = walk(client, "\n".join([before.code, generate_code(), after.code]))
    page = client.get(response["Location"]).content.decode()
    assert "1 voucher converted." in page
    assert after.code in page and "Not checked" in page
    after.refresh_from_db()
    assert after.status == Voucher.Status.OPEN
