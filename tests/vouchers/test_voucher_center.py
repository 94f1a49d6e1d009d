"""The Voucher center through the web: steps, preview, combine, results, double submits."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from licensing.models import License, SupportRegistration
from portal.models import AuditEvent
from tests.licensing.factories import (
    REGISTRATION,
    ProductVersionFactory,
    SupportRegistrationFactory,
)
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import PartnerFactory, VoucherFactory, vouchers, with_typo
from tests.vouchers.wizard import (
    confirm_token,
    form_errors,
    state_token,
    submit_codes,
    walk,
    walk_from_preview,
)
from vouchers.models import Voucher, VoucherConversion
from vouchers.wizard import INLINE_MAX

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def test_dashboard_links_to_the_voucher_center(client, member) -> None:  # type: ignore[no-untyped-def]
    page = client.get(reverse("dashboard")).content.decode()
    assert "Voucher center" in page and reverse("voucher-center") in page
    assert reverse("voucher-batches") not in page  # customers have no batches


def test_partner_dashboard_links_to_its_batches(client) -> None:  # type: ignore[no-untyped-def]
    membership = MembershipFactory(organization=PartnerFactory())
    client.force_login(membership.user)
    assert reverse("voucher-batches") in client.get(reverse("dashboard")).content.decode()


def test_convert_end_to_end(client, member, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    first = vouchers(2, quantity_per_voucher=5)
    second = vouchers(1, quantity_per_voucher=3)
    text = f"{first[0].code.lower()}\n{first[1].code.replace('-', '')}, {second[0].code}"
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(client, text)
    conversion = VoucherConversion.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("voucher-conversion", kwargs={"pk": conversion.pk})
    assert conversion.status == VoucherConversion.Status.DONE

    licenses = {lic.version_id: lic for lic in License.objects.all()}
    assert len(licenses) == 2
    combined = licenses[first[0].batch.version_id]
    assert combined.quantity == 10 and combined.source == License.Source.VOUCHER
    assert combined.owner == member.organization
    assert combined.registration.technical_email == REGISTRATION["technical_email"]
    assert SupportRegistration.objects.count() == 1  # asked once, for every license
    for voucher in Voucher.objects.all():
        assert voucher.status == Voucher.Status.REDEEMED
        assert voucher.redeemed_by == member.organization
    assert Voucher.objects.get(pk=first[1].pk).license == combined

    page = client.get(response["Location"]).content.decode()
    for license in licenses.values():
        assert license.key in page
        assert reverse("license-file", kwargs={"pk": license.pk}) in page
    assert first[0].code in page and second[0].code in page
    assert REGISTRATION["technical_email"] in page and member.user.email in page

    # The member's body, with the portal's links, and the technical contact's (no member).
    assert sorted(address for email in mail.outbox for address in email.to) == sorted(
        [member.user.email, REGISTRATION["technical_email"]]
    )
    for email in mail.outbox:
        assert all(lic.key in email.body for lic in licenses.values())
        assert sorted(name for name, _content, _type in email.attachments) == sorted(
            lic.file_name for lic in licenses.values()
        )
    assert AuditEvent.objects.filter(action="vouchers.converted").count() == 1
    assert AuditEvent.objects.filter(action="license.issued").count() == 2


def test_combine_unticked_gives_one_license_per_voucher(client, member) -> None:  # type: ignore[no-untyped-def]
    batch_vouchers = vouchers(3, quantity_per_voucher=4)
    response = walk(client, " ".join(v.code for v in batch_vouchers), combine=False)
    assert response.status_code == 302
    assert sorted(License.objects.values_list("quantity", flat=True)) == [4, 4, 4]


def test_combine_is_the_default_and_the_preview_says_both_counts(client, member) -> None:  # type: ignore[no-untyped-def]
    batch_vouchers = vouchers(3)
    submit_codes(client, "\n".join(v.code for v in batch_vouchers))
    response = client.get(reverse("voucher-center-preview"))
    assert response.context["form"]["combine"].value() is True
    page = response.content.decode()
    assert "Combined: 1 license." in page and "Separately: 3 licenses." in page


def test_preview_shows_product_quantity_and_reasons_and_writes_nothing(client, member) -> None:  # type: ignore[no-untyped-def]
    good = VoucherFactory(batch__quantity_per_voucher=7)
    typo = with_typo(VoucherFactory().code)
    response = submit_codes(client, f"{good.code}\n{typo}\nnot-a-code")
    assert response.status_code == 302
    page = client.get(reverse("voucher-center-preview")).content.decode()
    assert good.batch.version.product.name in page and ">7<" in page
    assert "check the code for typos" in page
    assert "This is not a voucher code" in page
    assert "1 of 3 codes can be converted" in page
    assert not License.objects.exists() and not VoucherConversion.objects.exists()
    good.refresh_from_db()
    assert good.status == Voucher.Status.OPEN


def test_valid_codes_convert_and_the_result_says_why_the_others_did_not(client, member) -> None:  # type: ignore[no-untyped-def]
    good = VoucherFactory()
    expired = VoucherFactory(batch__expires_on="2020-01-31")
    void = VoucherFactory(status=Voucher.Status.VOID)
    response = walk(client, "\n".join([good.code, expired.code, void.code]))
    page = client.get(response["Location"]).content.decode()
    assert License.objects.count() == 1
    assert "1 voucher converted." in page and "1 license was created." in page
    assert "expired on 2020-01-31" in page
    assert "was cancelled" in page
    assert "2 codes were not converted" in page


def test_nothing_convertible_has_no_next_step(client, member) -> None:  # type: ignore[no-untyped-def]
    submit_codes(client, with_typo(VoucherFactory().code))
    page = client.get(reverse("voucher-center-preview")).content.decode()
    assert "This code cannot be converted. The table says why." in page
    assert 'type="submit">Next' not in page.replace("\n", "").replace("  ", "")
    response = client.post(
        reverse("voucher-center-preview"), {"combine": "on", "token": state_token(client)}
    )
    assert response["Location"] == reverse("voucher-center-preview")
    assert client.get(reverse("voucher-center-registration"))["Location"] == reverse(
        "voucher-center-preview"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Enter at least one voucher code"),
        ("  \n , ,\n", "Enter at least one voucher code"),
    ],
)
def test_empty_submission(client, member, text, message) -> None:  # type: ignore[no-untyped-def]
    response = submit_codes(client, text)
    assert response.status_code == 200
    assert message in " ".join(form_errors(response).get("__all__", []))


def test_more_than_a_thousand_codes(client, member) -> None:  # type: ignore[no-untyped-def]
    from licensing.codes import generate_code

    response = submit_codes(client, "\n".join(generate_code() for _ in range(1001)))
    errors = " ".join(form_errors(response)["__all__"])
    assert "You entered 1,001 codes. Convert at most 1,000 at a time" in errors
    assert not VoucherConversion.objects.exists()


def test_csv_upload_end_to_end(client, member) -> None:  # type: ignore[no-untyped-def]
    batch_vouchers = vouchers(3)
    content = "code,product\n" + "".join(f"{v.code},whatever\n" for v in batch_vouchers)
    upload = io.BytesIO(content.encode())
    upload.name = "vouchers.csv"
    walk(client, file=upload)
    assert License.objects.get().quantity == 15


def test_registration_is_prefilled_from_the_last_one(client, member) -> None:  # type: ignore[no-untyped-def]
    SupportRegistrationFactory(organization=member.organization, company="Previous Co")
    submit_codes(client, VoucherFactory().code)
    client.post(reverse("voucher-center-preview"), {"combine": "on", "token": state_token(client)})
    response = client.get(reverse("voucher-center-registration"))
    assert response.context["form"].initial["company"] == "Previous Co"
    assert "host_id" not in response.context["form"].fields


def test_registration_is_validated(client, member) -> None:  # type: ignore[no-untyped-def]
    submit_codes(client, VoucherFactory().code)
    client.post(reverse("voucher-center-preview"), {"combine": "on", "token": state_token(client)})
    response = client.post(
        reverse("voucher-center-registration"),
        {**REGISTRATION, "technical_email": "nope", "token": state_token(client)},
    )
    assert response.status_code == 200
    assert "technical_email" in response.context["form"].errors


def test_steps_cannot_be_skipped(client, member) -> None:  # type: ignore[no-untyped-def]
    assert client.get(reverse("voucher-center-preview"))["Location"] == reverse("voucher-center")
    assert client.get(reverse("voucher-center-confirm"))["Location"] == reverse("voucher-center")
    submit_codes(client, VoucherFactory().code)
    assert client.get(reverse("voucher-center-registration"))["Location"] == reverse(
        "voucher-center-preview"
    )
    assert client.get(reverse("voucher-center-confirm"))["Location"] == reverse(
        "voucher-center-preview"
    )
    client.post(reverse("voucher-center-preview"), {"combine": "on", "token": state_token(client)})
    assert client.get(reverse("voucher-center-confirm"))["Location"] == reverse(
        "voucher-center-registration"
    )
    forged = client.post(
        reverse("voucher-center-confirm"), {"token": "6f1f0a39-5d8e-4d0e-9a57-0e8e8f0c1a2b"}
    )
    # Not this instance's page: nothing happens, and the instance is kept where it was.
    assert forged["Location"] == reverse("voucher-center-registration")
    assert not License.objects.exists()


def test_confirm_twice_gives_the_same_result_page(client, member) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory()
    walk(client, voucher.code, confirm=False)
    token = confirm_token(client)
    first = client.post(reverse("voucher-center-confirm"), {"token": token})
    second = client.post(reverse("voucher-center-confirm"), {"token": token})
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert License.objects.count() == 1 and VoucherConversion.objects.count() == 1


def test_two_tabs_confirm_the_same_codes(client, member) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory()
    other_tab = Client()
    other_tab.force_login(member.user)
    walk(client, voucher.code, confirm=False)
    token_one = confirm_token(client)
    walk(other_tab, voucher.code, confirm=False)  # same session? no: a second login session
    token_two = confirm_token(other_tab)
    first = client.post(reverse("voucher-center-confirm"), {"token": token_one})
    second = other_tab.post(reverse("voucher-center-confirm"), {"token": token_two})
    assert License.objects.count() == 1
    page = other_tab.get(second["Location"]).content.decode()
    assert "Your organization already converted this voucher" in page
    assert License.objects.get().key in page
    assert first["Location"] != second["Location"]


def test_result_page_and_zip_are_private_to_the_organization(client, member) -> None:  # type: ignore[no-untyped-def]
    batch_vouchers = vouchers(2)
    response = walk(client, "\n".join(v.code for v in batch_vouchers), combine=False)
    conversion = VoucherConversion.objects.get()
    zip_url = reverse("voucher-conversion-zip", kwargs={"pk": conversion.pk})
    assert client.get(zip_url)["Content-Type"] == "application/zip"
    other = MembershipFactory()
    client.force_login(other.user)
    assert client.get(response["Location"]).status_code == 404
    assert client.get(zip_url).status_code == 404
    client.logout()
    assert client.get(response["Location"]).status_code == 302


def test_voucher_center_requires_login(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("voucher-center"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_switching_organization_starts_over(client, member) -> None:  # type: ignore[no-untyped-def]
    second = MembershipFactory(user=member.user)
    # Start in the member's first organization: with two, the one shown first is the one whose
    # name sorts first ("Customer 100 Ltda" before "Customer 99 Ltda" once the factory's
    # sequence passes 99), so which one that is depends on how many tests ran before.
    client.post(
        reverse("organization-switch"), {"organization": member.organization_id, "next": "/"}
    )
    submit_codes(client, VoucherFactory().code)
    client.post(
        reverse("organization-switch"), {"organization": second.organization_id, "next": "/"}
    )
    assert client.get(reverse("voucher-center-preview"))["Location"] == reverse("voucher-center")


def test_back_to_codes_keeps_what_was_typed(client, member) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory()
    submit_codes(client, voucher.code.lower())
    response = client.get(reverse("voucher-center"))
    assert response.context["form"].initial["codes"] == voucher.code.lower()


def test_large_submission_runs_as_a_task_with_a_progress_page(  # type: ignore[no-untyped-def]
    client, member, django_capture_on_commit_callbacks
) -> None:
    batch_vouchers = vouchers(INLINE_MAX + 10, quantity_per_voucher=1)
    walk(client, "\n".join(v.code for v in batch_vouchers), confirm=False)
    token = confirm_token(client)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("voucher-center-confirm"), {"token": token})
    conversion = VoucherConversion.objects.get()
    assert conversion.status == VoucherConversion.Status.PENDING  # not run in the request
    assert len(callbacks) == 1

    progress = client.get(response["Location"])
    assert progress.status_code == 200
    assert progress["Refresh"] == "2"
    assert 'role="progressbar"' in progress.content.decode()
    assert "0 of 60 codes processed" in progress.content.decode()

    callbacks[0]()  # the worker picks the task up (eager in tests)
    conversion.refresh_from_db()
    assert conversion.status == VoucherConversion.Status.DONE
    result = client.get(response["Location"])
    assert "Refresh" not in result
    assert License.objects.get().quantity == INLINE_MAX + 10
    assert License.objects.get().key in result.content.decode()


def test_progress_page_shows_the_counters(client, member) -> None:  # type: ignore[no-untyped-def]
    conversion = VoucherConversion.objects.create(
        organization=member.organization,
        created_by=member.user,
        status=VoucherConversion.Status.RUNNING,
        total=1000,
        processed=250,
    )
    response = client.get(reverse("voucher-conversion", kwargs={"pk": conversion.pk}))
    page = response.content.decode()
    assert 'value="25"' in page and "25%" in page
    assert "250 of 1,000 codes processed" in page
    assert response["Refresh"] == "2"


def test_codes_of_another_product_version_make_separate_licenses(client, member) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    one = VoucherFactory(batch__version=version, batch__maintenance_months=12)
    two = VoucherFactory(batch__version=version, batch__maintenance_months=24)
    three = VoucherFactory(batch__version=version, batch__maintenance_months=12)
    walk(client, f"{one.code} {two.code} {three.code}")
    assert sorted(License.objects.values_list("quantity", flat=True)) == [5, 10]


STARTED_OVER = "This request started over; please check and confirm again."


def test_two_tabs_in_one_session_each_act_only_on_what_their_page_showed(client, member) -> None:  # type: ignore[no-untyped-def]
    first, second = VoucherFactory(), VoucherFactory()
    submit_codes(client, first.code)
    tab_a = state_token(client)
    # Tab B, same session, types other codes: a new instance of the Voucher center.
    submit_codes(client, second.code)
    tab_b = state_token(client)
    assert tab_a != tab_b

    for url, data in (
        ("voucher-center-preview", {"combine": "on"}),
        ("voucher-center-registration", REGISTRATION),
        ("voucher-center-confirm", {}),
    ):
        response = client.post(reverse(url), {**data, "token": tab_a}, follow=True)
        assert STARTED_OVER in response.content.decode(), url
    assert not License.objects.exists()
    # Tab B's progress was kept: nothing of tab A's pages was applied to it.
    preview = client.get(reverse("voucher-center-preview"))
    assert preview.status_code == 200 and second.code in preview.content.decode()
    assert client.get(reverse("voucher-center-registration"))["Location"] == reverse(
        "voucher-center-preview"
    )
    response = walk_from_preview(client, tab_b)
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.status == Voucher.Status.REDEEMED and first.status == Voucher.Status.OPEN


def test_steps_posted_without_the_token_are_refused(client, member) -> None:  # type: ignore[no-untyped-def]
    voucher = VoucherFactory()
    submit_codes(client, voucher.code)
    response = client.post(reverse("voucher-center-preview"), {"combine": "on"}, follow=True)
    assert STARTED_OVER in response.content.decode()
    assert client.get(reverse("voucher-center-registration"))["Location"] == reverse(
        "voucher-center-preview"
    )


def test_preview_says_which_codes_were_pasted_twice(client, member) -> None:  # type: ignore[no-untyped-def]
    first, second = vouchers(2, quantity_per_voucher=1)
    text = f"{first.code}\n{first.code.lower().replace('-', '')}\n{second.code}\n{first.code}"
    submit_codes(client, text)
    page = client.get(reverse("voucher-center-preview")).content.decode()
    assert "1 code was entered more than once; it is checked and converted only once" in page
    assert first.code in page.split('data-testid="voucher-duplicates"')[1].split("</div>")[0]
    assert page.count(f'data-code="{first.code}"') == 1  # one row in the preview


def test_conversion_result_lists_licenses_and_codes_in_a_table(
    client, member, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    codes = vouchers(2, quantity_per_voucher=2)
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(client, "\n".join(v.code for v in codes))
    page = client.get(response["Location"]).content.decode()
    table = page.split('data-testid="voucher-licenses"')[1].split("</table>")[0]
    assert '<th scope="col">License key</th>' in table
    for voucher in codes:
        assert f'<li class="font-monospace text-break converted-code">{voucher.code}</li>' in table
    assert License.objects.get().key.split("-")[0] in table
