"""The conversion service: licenses per group, claims, one email, resumable and idempotent."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from licensing.licensefile import verify_license_file
from licensing.models import License, add_months
from licensing.signing import get_public_key
from portal.models import AuditEvent, OutboundEmail
from tests.licensing.factories import REGISTRATION, ProductVersionFactory
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import VoucherFactory, conversion_email_to, vouchers, with_typo
from vouchers import services
from vouchers.models import Voucher, VoucherConversion
from vouchers.selectors import Reason, conversion_licenses, license_codes
from vouchers.services import (
    voucher_conversion_create,
    voucher_conversion_fail,
    voucher_conversion_run,
    vouchers_convert,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():  # type: ignore[no-untyped-def]
    return MembershipFactory()


def convert(member, codes, **kwargs):  # type: ignore[no-untyped-def]
    return vouchers_convert(
        codes=codes,
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        **kwargs,
    )


def test_combined_license_sums_the_quantities(member) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    a = vouchers(3, version=version, quantity_per_voucher=5)
    b = vouchers(2, version=version, quantity_per_voucher=10)
    result = convert(member, [v.code for v in a + b])
    (license,) = result.licenses
    today = timezone.localdate()
    assert license.quantity == 35 and license.version == version
    assert (license.maintenance_start, license.maintenance_end) == (today, add_months(today, 12))
    assert license.source == License.Source.VOUCHER
    assert license.source_ref.startswith(a[0].code) and len(license.source_ref) <= 100
    assert set(Voucher.objects.values_list("license", flat=True)) == {license.pk}
    assert sorted(result.converted_codes) == sorted(v.code for v in a + b)


def test_one_license_per_voucher_when_not_combining(member) -> None:  # type: ignore[no-untyped-def]
    batch = vouchers(4, quantity_per_voucher=2)
    result = convert(member, [v.code for v in batch], combine=False)
    assert [lic.quantity for lic in result.licenses] == [2, 2, 2, 2]
    assert {lic.source_ref for lic in result.licenses} == {v.code for v in batch}
    for voucher in Voucher.objects.select_related("license"):
        assert voucher.license.source_ref == voucher.code


def test_short_combined_references_list_every_code(member) -> None:  # type: ignore[no-untyped-def]
    batch = vouchers(3)
    (license,) = convert(member, [v.code for v in batch]).licenses
    assert license.source_ref == ", ".join(v.code for v in batch)


def test_different_maintenance_terms_are_not_combined(member) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    one = VoucherFactory(batch__version=version, batch__maintenance_months=12)
    two = VoucherFactory(batch__version=version, batch__maintenance_months=36)
    result = convert(member, [one.code, two.code])
    ends = sorted(lic.maintenance_end for lic in result.licenses)
    today = timezone.localdate()
    assert ends == [add_months(today, 12), add_months(today, 36)]


def test_partial_submission_converts_the_good_and_reports_the_rest(member) -> None:  # type: ignore[no-untyped-def]
    good = vouchers(2)
    void = VoucherFactory(status=Voucher.Status.VOID)
    typo = with_typo(VoucherFactory().code)
    result = convert(member, [good[0].code, void.code, typo, good[1].code, "short"])
    assert len(result.licenses) == 1 and result.licenses[0].quantity == 10
    assert [(r["code"], r["reason"]) for r in result.refused] == [
        (void.code, Reason.VOID),
        (typo, Reason.CHECK),
        ("short", Reason.MALFORMED),
    ]
    conversion = result.conversion
    assert conversion.status == VoucherConversion.Status.DONE
    assert (conversion.total, conversion.processed, conversion.converted) == (5, 5, 2)
    void.refresh_from_db()
    assert void.status == Voucher.Status.VOID
    # The email points the member to the result page; the technical contact, no member, who
    # could not open it, reads who can.
    email = conversion_email_to(member.user.email)
    page = reverse("voucher-conversion", args=[conversion.pk])
    contact = conversion_email_to(REGISTRATION["technical_email"])
    for body in (email.body_text, email.body_html):
        assert "3 codes could not be converted. The result page says why:" in body
        assert page in body
    for body in (contact.body_text, contact.body_html):
        assert "3 codes could not be converted. Members of" in body and page not in body


def test_nothing_convertible_sends_no_email_and_writes_no_registration(member) -> None:  # type: ignore[no-untyped-def]
    result = convert(member, [with_typo(VoucherFactory().code)])
    assert result.licenses == [] and not License.objects.exists()
    assert result.conversion.status == VoucherConversion.Status.DONE
    assert result.conversion.registration is None
    assert not OutboundEmail.objects.exists()


def test_one_email_lists_every_license_with_its_file(
    member, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    batch = vouchers(3)
    with django_capture_on_commit_callbacks(execute=True):
        result = convert(member, [v.code for v in batch], combine=False)
    # One email, two bodies: the member's with the portal's links, the technical contact's
    # (no member) without; both list every key with its file.
    assert OutboundEmail.objects.count() == 2
    assert all(len(message.attachments) == 3 for message in mail.outbox)
    (email,) = [message for message in mail.outbox if member.user.email in message.to]
    assert "3 license keys" in email.subject
    html = email.alternatives[0][0]
    for license in result.licenses:
        assert license.key in email.body and license.key in html
    assert len(email.attachments) == 3
    for (filename, content, mimetype), license in zip(
        email.attachments, result.licenses, strict=True
    ):
        assert filename == license.file_name and mimetype == "application/x-license-file"
        payload = verify_license_file(
            content.decode(), license_key=license.key, public_key=get_public_key()
        )
        assert payload["data"]["attributes"]["metadata"]["quantity"] == license.quantity


def test_more_than_ten_license_files_are_zipped(member, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    batch = vouchers(11)
    with django_capture_on_commit_callbacks(execute=True):
        result = convert(member, [v.code for v in batch], combine=False)
    ((filename, content, mimetype),) = mail.outbox[0].attachments
    assert (filename, mimetype) == ("licenses.zip", "application/zip")
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert len(archive.namelist()) == 11 == len(set(archive.namelist()))
    by_key = {lic.key: lic for lic in result.licenses}
    for name in archive.namelist():
        text = archive.read(name).decode()
        matches = [key for key in by_key if _verifies(text, key)]
        assert len(matches) == 1


def _verifies(text: str, key: str) -> bool:
    try:
        verify_license_file(text, license_key=key, public_key=get_public_key())
    except Exception:
        return False
    return True


def test_email_goes_out_in_the_submitters_language(
    member, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        convert(member, [VoucherFactory().code], language="pt-br")
    email = conversion_email_to(member.user.email)
    assert email.subject  # rendered under pt-BR (catalog may not cover it yet)
    assert 'lang="pt-br"' in email.body_html
    # The rows are prepared once, in the email's language, for both bodies.
    license = License.objects.get()
    end = license.maintenance_end.strftime("%d/%m/%Y")
    assert f"Chave de licença: {license.key}" in email.body_text
    assert (
        f"Manutenção: {license.maintenance_start.strftime('%d/%m/%Y')} – {end}" in email.body_text
    )
    assert f"<td>{end}</td>" in email.body_html


def test_audit_events(member) -> None:  # type: ignore[no-untyped-def]
    result = convert(member, [v.code for v in vouchers(2)])
    event = AuditEvent.objects.get(action="vouchers.converted")
    assert event.organization == member.organization and event.actor == member.user
    assert event.object_id == str(result.conversion.pk)
    assert event.details["vouchers"] == 2 and event.details["licenses"] == 1
    assert AuditEvent.objects.filter(action="license.issued").count() == 1


def test_running_a_finished_conversion_again_changes_nothing(member) -> None:  # type: ignore[no-untyped-def]
    result = convert(member, [v.code for v in vouchers(2)])
    emails = OutboundEmail.objects.count()
    again = voucher_conversion_run(conversion_id=result.conversion.pk)
    assert again.result == result.conversion.result
    assert License.objects.count() == 1 and OutboundEmail.objects.count() == emails


def test_interrupted_conversion_resumes_after_its_last_chunk(member, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "CHUNK_LICENSES", 2)
    batch = vouchers(5)
    conversion, _ = voucher_conversion_create(
        codes=[v.code for v in batch],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        combine=False,
    )
    services._conversion_step(conversion.pk)  # plan
    services._conversion_step(conversion.pk)  # licenses 1-2
    conversion.refresh_from_db()
    assert (conversion.status, conversion.processed, conversion.next_group) == ("running", 2, 2)
    assert License.objects.count() == 2
    # The worker dies here; the task is delivered again and picks up where it stopped.
    finished = voucher_conversion_run(conversion_id=conversion.pk)
    assert finished.status == VoucherConversion.Status.DONE
    assert License.objects.count() == 5 and len(conversion_licenses(finished)) == 5
    assert Voucher.objects.filter(status=Voucher.Status.REDEEMED).count() == 5
    # The email of the run that resumed lists the licenses issued before it stopped too.
    email = conversion_email_to(member.user.email)
    assert all(license.key in email.body_text for license in License.objects.all())


def test_a_failing_conversion_keeps_what_it_converted_and_reports_the_rest(  # type: ignore[no-untyped-def]
    member, monkeypatch
) -> None:
    monkeypatch.setattr(services, "CHUNK_LICENSES", 2)
    batch = vouchers(5)
    conversion, _ = voucher_conversion_create(
        codes=[v.code for v in batch],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        combine=False,
    )
    services._conversion_step(conversion.pk)
    services._conversion_step(conversion.pk)
    voucher_conversion_fail(conversion_id=conversion.pk, error="RuntimeError('boom')")
    conversion.refresh_from_db()
    assert conversion.status == VoucherConversion.Status.FAILED
    assert len(conversion_licenses(conversion)) == 2
    assert [r["reason"] for r in conversion.refused] == [Reason.STOPPED] * 3
    assert conversion.processed == conversion.total == 5
    assert Voucher.objects.filter(status=Voucher.Status.OPEN).count() == 3
    # The two licenses still reach the customer: the member, and the technical contact.
    assert conversion_email_to(member.user.email).body_text.count("License key:") == 2
    assert conversion_email_to(REGISTRATION["technical_email"])
    assert AuditEvent.objects.filter(action="vouchers.conversion_failed").exists()


def test_a_voucher_lost_between_plan_and_claim_is_reported_not_converted(member) -> None:  # type: ignore[no-untyped-def]
    batch = vouchers(3)
    conversion, _ = voucher_conversion_create(
        codes=[v.code for v in batch],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
    )
    services._conversion_step(conversion.pk)  # planned: all three usable
    other = MembershipFactory()
    convert(other, [batch[1].code])  # another organization is faster for one of them
    finished = voucher_conversion_run(conversion_id=conversion.pk)
    (license,) = conversion_licenses(finished)
    assert license.quantity == 10 and batch[1].code not in license_codes([license.pk])[license.pk]
    assert finished.refused == [{"code": batch[1].code, "reason": Reason.REDEEMED, "params": {}}]


def test_batch_voided_between_plan_and_claim(member) -> None:  # type: ignore[no-untyped-def]
    batch = vouchers(2)
    conversion, _ = voucher_conversion_create(
        codes=[v.code for v in batch],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
    )
    services._conversion_step(conversion.pk)
    services.voucher_batch_void(batch=batch[0].batch, acting_user=None)
    finished = voucher_conversion_run(conversion_id=conversion.pk)
    assert conversion_licenses(finished) == [] and not License.objects.exists()
    assert {r["reason"] for r in finished.refused} == {Reason.VOID}


# -- query counts -----------------------------------------------------------------------------


def _queries(member, codes, **kwargs) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as captured:
        convert(member, codes, **kwargs)
    return len(captured)


def test_combined_conversion_queries_do_not_grow_per_voucher(member) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    small = _queries(member, [v.code for v in vouchers(10, version=version)])
    large = _queries(member, [v.code for v in vouchers(200, version=version)])
    assert large == small, (small, large)
    assert small <= 31  # one of them: the languages the email's recipients read


def test_separate_licenses_cost_a_constant_number_of_statements_per_chunk(  # type: ignore[no-untyped-def]
    member, monkeypatch
) -> None:
    monkeypatch.setattr(services, "CHUNK_LICENSES", 10)
    version = ProductVersionFactory()
    small = _queries(member, [v.code for v in vouchers(20, version=version)], combine=False)
    large = _queries(member, [v.code for v in vouchers(60, version=version)], combine=False)
    # Per chunk, whatever its licenses: the conversion locked, the submitter's access checked
    # again (a customer may have revoked it), the vouchers locked, their versions, the licenses
    # (one INSERT), their audit events (one INSERT), the claim, the conversion's rows for them
    # (one INSERT), the progress, and the savepoint pair of the test's transaction. (A chunk
    # that could not claim some vouchers also appends them to the refused codes; SQLite, with
    # no in-place JSON append, reads the result first.)
    per_chunk = (large - small) / 4
    assert per_chunk <= (10 if connection.vendor == "postgresql" else 11), (small, large, per_chunk)
    # The result holds every license, appended chunk by chunk.
    conversion = VoucherConversion.objects.order_by("-created_at").first()
    assert conversion is not None and len(conversion_licenses(conversion)) == 60
    assert len({license.pk for license in conversion_licenses(conversion)}) == 60
    assert AuditEvent.objects.filter(action="license.issued").count() == 80


@pytest.mark.parametrize("count", [10, 200])
def test_conversion_through_the_page_is_bounded(  # type: ignore[no-untyped-def]
    client, count, django_assert_max_num_queries, django_capture_on_commit_callbacks
) -> None:
    from django.urls import reverse

    from tests.vouchers.wizard import confirm_token, walk

    membership = MembershipFactory()
    client.force_login(membership.user)
    version = ProductVersionFactory()
    walk(client, "\n".join(v.code for v in vouchers(count, version=version)), confirm=False)
    token = confirm_token(client)
    with django_assert_max_num_queries(45), django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("voucher-center-confirm"), {"token": token})
    with django_assert_max_num_queries(10):
        assert client.get(response["Location"]).status_code == 200


def test_the_claim_pairs_each_voucher_with_its_license_and_skips_what_is_not_open(  # type: ignore[no-untyped-def]
    member,
) -> None:
    batch = vouchers(4)
    licenses = convert(member, [v.code for v in batch[:2]], combine=False).licenses
    taken = Voucher.objects.get(pk=batch[0].pk)  # converted above: no longer open
    license_of = {
        batch[0].pk: licenses[1].pk,
        batch[2].pk: licenses[0].pk,
        batch[3].pk: licenses[1].pk,
    }
    claimed = services._claim(license_of, organization=member.organization, now=timezone.now())
    assert claimed == 2  # the caller sees the shortfall and rolls the chunk back
    assert Voucher.objects.get(pk=batch[0].pk).license_id == taken.license_id
    assert Voucher.objects.get(pk=batch[2].pk).license_id == licenses[0].pk
    assert Voucher.objects.get(pk=batch[3].pk).license_id == licenses[1].pk


def test_email_rows_are_joined_in_python_as_the_template_loop_wrote_them() -> None:
    """Text: three lines a license, a blank line between; HTML: every value escaped."""
    from vouchers.emails import EmailRow, rows_html, rows_text

    rows = [
        EmailRow("Suite <Pro> & Co 1.0", 2, "AAAAA-BBBBB", "01/01/2026", "01/01/2027"),
        EmailRow("Suite 1.0", 1, "CCCCC-DDDDD", "02/01/2026", "02/01/2027"),
    ]
    assert rows_text(rows) == (
        "\n1. Suite <Pro> & Co 1.0 · Quantity 2\n"
        "   License key: AAAAA-BBBBB\n"
        "   Maintenance: 01/01/2026 – 01/01/2027\n"
        "\n2. Suite 1.0 · Quantity 1\n"
        "   License key: CCCCC-DDDDD\n"
        "   Maintenance: 02/01/2026 – 02/01/2027\n"
    )
    html = rows_html(rows)
    assert html.count("<tr ") == 2
    assert "<td>Suite &lt;Pro&gt; &amp; Co 1.0</td><td>2</td>" in html
    assert "<strong>CCCCC-DDDDD</strong>" in html
    assert "<Pro>" not in html
