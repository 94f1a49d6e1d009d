from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from licensing.codes import generate_code
from licensing.licensefile import verify_license_file
from licensing.models import License, SerialNumber, SupportRegistration, add_months
from licensing.services import serial_redeem
from licensing.signing import get_public_key
from portal.models import AuditEvent, FailedCodeAttempt, OutboundEmail
from tests.licensing.factories import (
    REGISTRATION,
    ProductVersionFactory,
    SerialNumberFactory,
    SupportRegistrationFactory,
    emailed_file_quantity,
)
from tests.licensing.wizard import PREFIX, instance_token, post_step, walk
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


def step_errors(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(e) for e in response.context["wizard"]["form"].errors.get("serial", []))


def test_new_purchase_end_to_end(client, member, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(quantity=25, maintenance_months=12)
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(client, serial.code.lower().replace("-", " "))
    license = License.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("get-a-key-result", kwargs={"pk": license.pk})
    today = timezone.localdate()
    assert license.owner == member.organization
    assert license.quantity == 25
    assert license.version == serial.version
    assert (license.maintenance_start, license.maintenance_end) == (today, add_months(today, 12))
    assert license.registration.technical_email == REGISTRATION["technical_email"]
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.REDEEMED
    assert serial.redeemed_by == member.organization and serial.license == license

    page = client.get(response["Location"])
    content = page.content.decode()
    assert license.key in content
    assert "Download license file" in content
    # The certificate is offered beside the file, not only on the license page.
    certificate = reverse("license-certificate-pdf", kwargs={"pk": license.pk})
    assert f'href="{certificate}" data-testid="result-certificate"' in content
    assert client.get(certificate).status_code == 200
    # And the software the key is for: a newcomer was never pointed to FileConnect.
    downloads = reverse("fileconnect-license", kwargs={"pk": license.pk})
    assert f'href="{downloads}" data-testid="result-downloads"' in content
    assert client.get(downloads).status_code == 200
    assert REGISTRATION["technical_email"] in content and member.user.email in content

    download = client.get(reverse("license-file", kwargs={"pk": license.pk}))
    assert download["Content-Disposition"].startswith("attachment;")
    payload = verify_license_file(
        download.content.decode(), license_key=license.key, public_key=get_public_key()
    )
    metadata = payload["data"]["attributes"]["metadata"]
    assert metadata["quantity"] == 25 and metadata["account"] == member.organization.account_number

    # One email, in two bodies: the link to the license's page only for whom it opens (the
    # member); the technical contact, perhaps no member, reads where to find it.
    assert len(mail.outbox) == 2
    by_recipient = {tuple(message.to): message for message in mail.outbox}
    assert set(by_recipient) == {(member.user.email,), (REGISTRATION["technical_email"],)}
    link = f"/licenses/{license.pk}/"
    assert link in by_recipient[(member.user.email,)].body
    assert link not in by_recipient[(REGISTRATION["technical_email"],)].body
    email = by_recipient[(member.user.email,)]
    assert license.key in email.body and serial.version.product.name in email.subject
    html = email.alternatives[0][0]
    assert license.key in html
    ((filename, content, mimetype),) = email.attachments
    assert filename == license.file_name and mimetype == "application/x-license-file"
    assert verify_license_file(
        content.decode(), license_key=license.key, public_key=get_public_key()
    )
    assert {e.status for e in OutboundEmail.objects.all()} == {OutboundEmail.Status.SENT}
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"license.issued", "serial.redeemed"} <= actions


def test_registration_is_prefilled_from_last_registration(client, member) -> None:  # type: ignore[no-untyped-def]
    SupportRegistrationFactory(organization=member.organization, company="Previous Co")
    serial = SerialNumberFactory()
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": serial.code})
    assert response.context["wizard"]["form"].initial["company"] == "Previous Co"


def test_printed_key_is_returned_not_minted(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(printed_key="abcde-fghjk-mnpqr-stvwx-yz012")
    walk(client, serial.code)
    assert License.objects.get().key == "ABCDE-FGHJK-MNPQR-STVWX-YZ012"


def test_node_locked_product_asks_for_host_id(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(version__product__node_locked=True)
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": serial.code})
    response = post_step(client, "registration", {**REGISTRATION, "host_id": "   "})
    assert response.context["wizard"]["steps"].current == "registration"
    assert "host ID" in str(response.context["wizard"]["form"].errors["host_id"])
    walk(client, serial.code, registration={"host_id": "HOST-4F2A-99"})
    assert License.objects.get().host_id == "HOST-4F2A-99"


def test_host_id_not_asked_for_floating_products(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": serial.code})
    assert "host_id" not in response.context["wizard"]["form"].fields


def _owned_license(member, version, **kwargs):  # type: ignore[no-untyped-def]
    from licensing.services import IssueSource, license_issue

    today = timezone.localdate()
    return license_issue(
        source=IssueSource(
            kind="serial",
            ref="seed",
            version=version,
            quantity=10,
            maintenance_start=today - timedelta(days=300),
            maintenance_end=kwargs.get("end", today + timedelta(days=65)),
        ),
        owner=member.organization,
        registration=SupportRegistrationFactory(organization=member.organization),
        acting_user=member.user,
    )


def test_upgrade_supersedes_the_chosen_license(client, member) -> None:  # type: ignore[no-untyped-def]
    old_version = ProductVersionFactory(version="14.3")
    new_version = ProductVersionFactory(product=old_version.product, version="15.0")
    first = _owned_license(member, old_version)
    second = _owned_license(member, old_version)
    serial = SerialNumberFactory(version=new_version, kind=SerialNumber.Kind.UPGRADE, quantity=10)
    client.get(reverse("get-a-key"))
    post_step(client, "serial", {"serial": serial.code})
    response = post_step(client, "registration", REGISTRATION)  # no choice made
    assert "target_license" in response.context["wizard"]["form"].errors
    walk(client, serial.code, registration={"target_license": str(second.pk)})
    new = License.objects.get(source_ref=serial.code)
    second.refresh_from_db()
    first.refresh_from_db()
    assert new.version == new_version and new.supersedes == second
    assert second.status == License.Status.SUPERSEDED
    assert first.status == License.Status.ACTIVE


def test_an_upgrade_serial_for_fewer_seats_upgrades_that_many(client, member) -> None:  # type: ignore[no-untyped-def]
    # A 4-seat upgrade serial applied to a 10-seat license superseded all 10 seats: the
    # customer kept 4, of the new version, and lost 6. Now 6 stay on the license, under its key.
    old_version = ProductVersionFactory(version="14.3")
    new_version = ProductVersionFactory(product=old_version.product, version="15.0")
    license = _owned_license(member, old_version)
    key, file_issued = license.key, license.file_issued_at
    serial = SerialNumberFactory(version=new_version, kind=SerialNumber.Kind.UPGRADE, quantity=4)
    confirm = walk(
        client, serial.code, registration={"target_license": str(license.pk)}, confirm=False
    )
    assert "4 of its 10 seats are upgraded; the other 6 stay on version 14.3" in (
        confirm.content.decode()
    )
    post_step(client, "confirm")
    new = License.objects.get(source_ref=serial.code)
    license.refresh_from_db()
    assert (new.version, new.quantity, new.supersedes) == (new_version, 4, license)
    assert (license.status, license.quantity, license.key) == (License.Status.ACTIVE, 6, key)
    assert license.file_issued_at > file_issued  # its file now says 6
    event = AuditEvent.objects.get(action="license.upgraded", object_id=str(license.pk))
    assert event.details["quantity"] == 4 and event.details["left"] == 6
    assert not AuditEvent.objects.filter(action="license.superseded").exists()
    # The file that says 6 is emailed too: the inbox held only the one that said 10.
    reissued = OutboundEmail.objects.filter(template="license_upgraded_in_part")
    assert reissued.exists()
    for row in reissued:
        assert emailed_file_quantity(row, license) == 6


def test_an_upgrade_serial_for_all_the_seats_replaces_the_license(client, member) -> None:  # type: ignore[no-untyped-def]
    old_version = ProductVersionFactory(version="14.3")
    new_version = ProductVersionFactory(product=old_version.product, version="15.0")
    license = _owned_license(member, old_version)
    serial = SerialNumberFactory(version=new_version, kind=SerialNumber.Kind.UPGRADE, quantity=10)
    confirm = walk(
        client, serial.code, registration={"target_license": str(license.pk)}, confirm=False
    )
    assert (
        "10 of its 10 seats are upgraded: the new license replaces this one, and its key is "
        "superseded."
    ) in " ".join(confirm.content.decode().split())
    post_step(client, "confirm")
    license.refresh_from_db()
    assert license.status == License.Status.SUPERSEDED and license.quantity == 10


def test_upgrade_without_a_license_to_upgrade_is_refused(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(kind=SerialNumber.Kind.UPGRADE)
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": serial.code})
    assert "has no active one" in step_errors(response)


def test_renewal_extends_maintenance_and_reissues_file(
    client, member, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    license = _owned_license(member, version)
    old_end, old_file = license.maintenance_end, license.file_issued_at
    mail.outbox.clear()
    serial = SerialNumberFactory(
        version=version, kind=SerialNumber.Kind.RENEWAL, maintenance_months=12
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(client, serial.code, registration={"target_license": str(license.pk)})
    assert response["Location"] == reverse("get-a-key-result", kwargs={"pk": license.pk})
    license.refresh_from_db()
    assert license.maintenance_end == add_months(old_end, 12)
    assert license.file_issued_at > old_file
    assert License.objects.count() == 1
    assert "renewed" in mail.outbox[0].subject
    assert AuditEvent.objects.filter(action="license.renewed", object_id=str(license.pk)).exists()


def test_a_renewal_that_replaces_the_registration_says_so_in_the_history(client, member) -> None:  # type: ignore[no-untyped-def]
    # The renewal's registration step replaces the license's registration (a partner acting
    # for the customer may type its own contact): the history said only "Maintenance renewed".
    version = ProductVersionFactory()
    license = _owned_license(member, version)
    SupportRegistration.objects.filter(pk=license.registration_id).update(**REGISTRATION)
    serial = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL)
    changed = {"primary_name": "Pedro Parceiro", "primary_email": "pedro@partner.example"}
    walk(client, serial.code, registration={"target_license": str(license.pk), **changed})
    event = AuditEvent.objects.get(action="license.renewed", object_id=str(license.pk))
    assert event.details["registration_changes"] == {
        "primary_name": {"from": "Paula Primary", "to": "Pedro Parceiro"},
        "primary_email": {"from": "paula@acme.example", "to": "pedro@partner.example"},
    }
    page = client.get(reverse("license-detail", kwargs={"pk": license.pk})).content.decode()
    assert re.search(
        r"Maintenance renewed: [^;<]+;\s+support registration changed:\s+"
        r"primary contact name, primary contact email",
        page,
    )
    # Renewed again with the same contacts: nothing about the registration.
    again = SerialNumberFactory(version=version, kind=SerialNumber.Kind.RENEWAL)
    walk(client, again.code, registration={"target_license": str(license.pk), **changed})
    latest = AuditEvent.objects.filter(action="license.renewed").latest("created_at")
    assert "registration_changes" not in latest.details


def test_renewal_result_names_whom_the_renewal_was_emailed_to(
    client, member, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # A colleague obtained the license; the result page of this person's renewal said the
    # renewed key was emailed to that colleague, while the email went to this person.
    from licensing.services import IssueSource, license_issue

    colleague = MembershipFactory(organization=member.organization).user
    version = ProductVersionFactory()
    today = timezone.localdate()
    license = license_issue(
        source=IssueSource(
            kind="serial",
            ref="seed",
            version=version,
            quantity=10,
            maintenance_start=today,
            maintenance_end=today + timedelta(days=65),
        ),
        owner=member.organization,
        registration=SupportRegistrationFactory(organization=member.organization),
        acting_user=colleague,
        notify=False,
    )
    serial = SerialNumberFactory(version=version, kind="renewal")
    with django_capture_on_commit_callbacks(execute=True):
        response = walk(client, serial.code, registration={"target_license": str(license.pk)})
    emailed = sorted(address for message in mail.outbox for address in message.to)
    assert member.user.email in emailed and colleague.email not in emailed
    page = client.get(response["Location"]).content.decode()
    assert f"emailed to {', '.join(emailed)}." in page


def test_lapsed_renewal_starts_from_today(client, member) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory()
    today = timezone.localdate()
    license = _owned_license(member, version, end=today - timedelta(days=40))
    serial = SerialNumberFactory(version=version, kind="renewal", maintenance_months=6)
    walk(client, serial.code, registration={"target_license": str(license.pk)})
    license.refresh_from_db()
    assert (license.maintenance_start, license.maintenance_end) == (today, add_months(today, 6))


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "This field is required"),
        ("   ", "This field is required"),
        ("<script>", "does not look like a serial number"),
        ("A" * 90, "at most 80 characters"),
    ],
)
def test_bad_serial_input(client, member, typed, message) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": typed})
    assert response.status_code == 200
    assert message in step_errors(response)
    assert not License.objects.exists()


def test_typo_is_caught_by_the_check_character(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    chars = list(serial.code)
    chars[3] = "X" if chars[3] != "X" else "Y"
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": "".join(chars)})
    assert "check the serial number for typos" in step_errors(response)
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.OPEN


def test_unknown_and_foreign_serials_read_the_same(client, member) -> None:  # type: ignore[no-untyped-def]
    foreign = SerialNumberFactory()
    walk(client, foreign.code)  # member's organization redeems it...
    other = MembershipFactory()
    client.force_login(other.user)  # ...and another organization tries it
    client.get(reverse("get-a-key"))
    foreign_message = step_errors(post_step(client, "serial", {"serial": foreign.code}))
    unknown_message = step_errors(post_step(client, "serial", {"serial": generate_code()}))
    assert foreign_message == unknown_message
    assert "could not find this serial number" in unknown_message


def test_own_redeemed_serial_says_where_the_license_is(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code)
    license = License.objects.get()
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": serial.code})
    assert license.key in step_errors(response)


def test_expired_serial(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(expires_on=date(2020, 1, 1))
    client.get(reverse("get-a-key"))
    assert "expired on 2020-01-01" in step_errors(
        post_step(client, "serial", {"serial": serial.code})
    )
    # The date as the page writes dates in the reader's language, not ISO in every language.
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "pt-br"
    client.get(reverse("get-a-key"))
    assert "01/01/2020" in step_errors(post_step(client, "serial", {"serial": serial.code}))


def test_void_serial_reads_as_unknown(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(status=SerialNumber.Status.VOID)
    client.get(reverse("get-a-key"))
    message = step_errors(post_step(client, "serial", {"serial": serial.code}))
    assert "could not find" in message


def test_rate_limit_after_ten_failures(client, member) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("get-a-key"))
    for _ in range(10):
        message = step_errors(post_step(client, "serial", {"serial": generate_code()}))
        assert "could not find" in message
    good = SerialNumberFactory()
    message = step_errors(post_step(client, "serial", {"serial": good.code}))
    assert "Too many codes were not recognised" in message
    assert "try again in" in message
    assert AuditEvent.objects.filter(action="serial.rate_limited").count() == 1
    good.refresh_from_db()
    assert good.status == SerialNumber.Status.OPEN


def test_rate_limit_is_per_user(client, member) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("get-a-key"))
    for _ in range(10):
        post_step(client, "serial", {"serial": generate_code()})
    other = MembershipFactory()
    client.force_login(other.user)
    serial = SerialNumberFactory()
    client.get(reverse("get-a-key"))
    response = post_step(client, "serial", {"serial": serial.code})
    assert response.context["wizard"]["steps"].current == "registration"


def test_confirm_twice_gives_one_license_and_the_same_page(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    page = instance_token(client)  # what the Confirm page carries, clicked twice
    first = post_step(client, "confirm", token=page)
    second = post_step(client, "confirm", token=page)
    assert License.objects.count() == 1
    assert second.status_code == 302 and second["Location"] == first["Location"]


def test_two_tabs_confirm_the_same_serial(client, member) -> None:  # type: ignore[no-untyped-def]
    from django.test import Client

    serial = SerialNumberFactory()
    other_tab = Client()
    other_tab.force_login(member.user)
    walk(client, serial.code, confirm=False)
    walk(other_tab, serial.code, confirm=False)
    first = post_step(client, "confirm")
    second = post_step(other_tab, "confirm")
    assert License.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_steps_cannot_be_skipped(client, member) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("get-a-key"))
    response = post_step(client, "confirm")
    assert response.status_code == 200
    assert response.context["wizard"]["steps"].current == "serial"
    assert not License.objects.exists()


def test_quantity_and_product_come_from_the_serial(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(quantity=3)
    other_version = ProductVersionFactory()
    walk(client, serial.code, registration={"quantity": 9999, "version": other_version.pk})
    license = License.objects.get()
    assert license.quantity == 3 and license.version == serial.version


def test_result_page_is_private_to_the_organization(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    response = walk(client, serial.code)
    license = License.objects.get()
    other = MembershipFactory()
    client.force_login(other.user)
    assert client.get(response["Location"]).status_code == 404
    assert client.get(reverse("license-file", kwargs={"pk": license.pk})).status_code == 404
    client.logout()
    assert client.get(response["Location"]).status_code == 302


def test_wizard_requires_login(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("get-a-key"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_management_form_tampering_does_not_500(client, member) -> None:  # type: ignore[no-untyped-def]
    client.get(reverse("get-a-key"))
    response = client.post(reverse("get-a-key"), {f"{PREFIX}-current_step": "nonsense"})
    assert response.status_code == 302 and response["Location"] == reverse("get-a-key")
    assert not License.objects.exists()


def test_a_printed_key_already_registered_is_refused(client, member) -> None:  # type: ignore[no-untyped-def]
    first = SerialNumberFactory(printed_key="ABCDE-FGHJK-MNPQR-STVWX-YZ012")
    second = SerialNumberFactory(printed_key="abcde fghjk mnpqr stvwx yz012")
    walk(client, first.code)
    response = walk(client, second.code)
    assert response.status_code == 302 and response["Location"] == reverse("get-a-key")
    page = client.get(response["Location"]).content.decode()
    assert "already registered" in page
    second.refresh_from_db()
    assert second.status == SerialNumber.Status.OPEN and License.objects.count() == 1


# -- Confirm: the redemption's locked read is the only check --------------------------------


def _confirm_refused(client) -> None:  # type: ignore[no-untyped-def]
    before = (License.objects.count(), AuditEvent.objects.count(), OutboundEmail.objects.count())
    response = post_step(client, "confirm")
    assert response.status_code == 302 and response["Location"] == reverse("get-a-key")
    page = client.get(response["Location"])
    shown = " ".join(str(m) for m in page.context["messages"])
    # The serial step accepted the code: gone since, it reads gone, not "could not find" (which
    # told someone who had just seen it accepted to check it against the certificate).
    assert "was redeemed or withdrawn after you entered it" in shown
    assert "could not find" not in shown
    after = (License.objects.count(), AuditEvent.objects.count(), OutboundEmail.objects.count())
    assert after == before
    assert not FailedCodeAttempt.objects.exists()  # not a typed code: no attempt counted


def test_confirm_of_a_serial_spent_meanwhile_changes_nothing(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    other = MembershipFactory()
    serial_redeem(
        code=serial.code,
        organization=other.organization,
        registration=REGISTRATION,
        acting_user=other.user,
    )
    _confirm_refused(client)
    serial.refresh_from_db()
    assert serial.redeemed_by_id == other.organization.pk
    assert License.objects.filter(owner=member.organization).count() == 0


def test_confirm_of_a_serial_voided_meanwhile_changes_nothing(client, member) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    SerialNumber.objects.filter(pk=serial.pk).update(status=SerialNumber.Status.VOID)
    _confirm_refused(client)
    serial.refresh_from_db()
    assert serial.status == SerialNumber.Status.VOID
    assert not License.objects.exists()


def test_confirm_reads_the_serial_once_locked_and_counts_no_attempt(
    client, member, settings, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    token = instance_token(client)
    # The session and the user; the savepoint pair of the redemption and its eight statements
    # (the serial locked, registration, license, the technical contact's account for the
    # email, outbox, redemption, serial, audit events); the session saved in its savepoint pair.
    with CaptureQueriesContext(connection) as captured, django_assert_num_queries(15):
        response = post_step(client, "confirm", token=token)
    assert response.status_code == 302
    serial_reads = [q["sql"] for q in captured if 'FROM "licensing_serialnumber"' in q["sql"]]
    assert len(serial_reads) == 1
    assert "FOR UPDATE" in serial_reads[0] or connection.vendor == "sqlite"  # no row locks there
    assert not [q for q in captured if "portal_failedcodeattempt" in q["sql"]]
    assert License.objects.get().owner == member.organization
