"""One license: sharing, custom data, registration, resend, renewal, rehost and certificate."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from licensing.codes import generate_code
from licensing.models import (
    CustomField,
    CustomFieldValue,
    License,
    LicenseShare,
    RetiredKey,
    SupportRegistration,
    add_months,
)
from licensing.services import LicensingError
from portal.models import AuditEvent, FailedCodeAttempt, User
from tests.licensing.factories import (
    LicenseFactory,
    ProductFactory,
    ProductVersionFactory,
    SerialNumberFactory,
)
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("license_email_writer")]


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory()
    client.force_login(membership.user)
    return membership


@pytest.fixture
def license(admin):  # type: ignore[no-untyped-def]
    return LicenseFactory(owner=admin.organization)


def _detail(license) -> str:  # type: ignore[no-untyped-def]
    return reverse("license-detail", kwargs={"pk": license.pk})


def _messages(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


def _field(response, name: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The value a refused page kept in input `name`, and the error shown at it (Bootstrap's
    is-invalid and invalid-feedback, tied to the input by aria-describedby)."""
    page = response.content.decode()
    tag = re.search(rf'<input [^>]*name="{name}"[^>]*>', page)
    assert tag, f"no input {name}"
    assert "is-invalid" in tag.group() and 'aria-invalid="true"' in tag.group(), tag.group()
    described = re.search(r'aria-describedby="([^"]+)"', tag.group())
    assert described, tag.group()
    feedback = re.search(
        rf'<div id="{described.group(1)}" class="invalid-feedback">(.*?)</div>', page, re.S
    )
    assert feedback, f"no error at {name}"
    value = re.search(r'value="([^"]*)"', tag.group())
    return (value.group(1) if value else ""), " ".join(
        re.sub(r"<[^>]+>", " ", feedback.group(1)).split()
    )


# -- sharing -----------------------------------------------------------------------------------


def test_share_with_existing_user(
    client, admin, license, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    recipient = MembershipFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("license-share"),
            {
                "licenses": [license.pk],
                "email": recipient.user.email.upper(),
                "access": "read",
                "back": "license-detail",
            },
            follow=True,
        )
    assert "Shared 1 license with" in _messages(response)
    share = LicenseShare.objects.get()
    assert share.user == recipient.user and share.access == "read"
    assert mail.outbox[0].to == [recipient.user.email]
    client.force_login(recipient.user)
    page = client.get(reverse("license-list")).content.decode()
    assert license.key in page and f"shared by {admin.organization.name}" in page
    assert client.get(_detail(license)).status_code == 200
    assert AuditEvent.objects.filter(action="license.shared").exists()


def test_share_with_someone_without_an_account(
    client, admin, license, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("license-share"),
            {"licenses": [license.pk], "email": "newbie@partner.example", "access": "manage"},
        )
    (email,) = mail.outbox
    link = re.search(r"http://testserver(/licenses/shared/[\w-]+/)", email.body).group(1)
    client.logout()
    assert "Create an account" in client.get(link).content.decode()
    response = client.post(
        reverse("account_signup"),
        {
            "full_name": "New Bie",
            "email": "newbie@partner.example",
            "password1": "a-long-and-unusual-passphrase",
            "password2": "a-long-and-unusual-passphrase",
            "organization_name": "Partner Co",
        },
    )
    assert response["Location"] == link
    response = client.get(link, follow=True)
    assert license.key in response.content.decode()
    assert LicenseShare.objects.get().user == User.objects.get(email="newbie@partner.example")


@pytest.mark.parametrize("count", [1, 2])
def test_the_share_email_speaks_of_one_license_or_several(admin, count: int) -> None:  # type: ignore[no-untyped-def]
    from licensing.services import license_share
    from portal.models import OutboundEmail

    licenses = [LicenseFactory(owner=admin.organization) for _ in range(count)]
    license_share(licenses=licenses, email="guest@partner.example", access="read", actor=admin.user)
    email = OutboundEmail.objects.get(template="license_shared")
    if count == 1:
        assert email.subject.endswith("] A license was shared with you")
        assert "shared this license with you:" in email.body_text
        assert "shared this license with you:" in email.body_html
        assert "to see it: http://testserver/licenses/shared/" in email.body_text
        assert "see them" not in email.body_text + email.body_html
    else:
        assert email.subject.endswith("] Licenses were shared with you")
        assert "shared these 2 licenses with you:" in email.body_text
        assert "shared these 2 licenses with you:" in email.body_html
        assert "to see them: http://testserver/licenses/shared/" in email.body_text
    # One line per license, no blank line between them, one before the link.
    lines = email.body_text.split("with you:\n", 1)[1].split("\n")
    assert [line.startswith("- ") for line in lines[: count + 1]] == [True] * count + [False]
    assert lines[count] == "" and lines[count + 1].startswith("Create an account")


def test_share_link_for_another_address_is_refused(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    share = LicenseShare.objects.create(license=license, email="someone@else.example")
    intruder = MembershipFactory()
    client.force_login(intruder.user)
    response = client.get(reverse("share-landing", args=[share.token]), follow=True)
    assert "shared with someone@else.example" in _messages(response)
    assert LicenseShare.objects.get().user is None


@pytest.mark.parametrize(
    "email", ["", "not-an-email", "a@b", "two@x.example, three@y.example", "<script>@x.example"]
)
def test_bad_share_emails(client, admin, license, email) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("license-share"),
        {"licenses": [license.pk], "email": email, "access": "read"},
        follow=True,
    )
    assert response.status_code == 200
    assert "email address" in _messages(response)
    assert not LicenseShare.objects.exists()


def test_sharing_with_yourself_or_bad_access(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("license-share"),
        {"licenses": [license.pk], "email": admin.user.email, "access": "read"},
        follow=True,
    )
    assert "yourself" in _messages(response)
    response = client.post(
        reverse("license-share"),
        {"licenses": [license.pk], "email": "x@y.example", "access": "owner"},
        follow=True,
    )
    assert "Select a valid choice" in _messages(response)
    assert not LicenseShare.objects.exists()


def test_members_cannot_share(client, license) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory(organization=license.owner, role="member")
    client.force_login(member.user)
    response = client.post(
        reverse("license-share"),
        {"licenses": [license.pk], "email": "x@y.example", "access": "read"},
    )
    assert response.status_code == 403
    assert "administrators" in response.content.decode()
    assert not LicenseShare.objects.exists()


def test_bulk_share_and_revoke(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    second = LicenseFactory(owner=admin.organization)
    foreign = LicenseFactory()
    client.post(
        reverse("license-share"),
        {
            "licenses": [license.pk, second.pk, foreign.pk],
            "email": "team@customer.example",
            "access": "read",
        },
    )
    assert set(LicenseShare.objects.values_list("license_id", flat=True)) == {license.pk, second.pk}
    share = LicenseShare.objects.get(license=license)
    client.post(reverse("share-revoke", args=[share.pk]), {"confirm": "1"})
    share.refresh_from_db()
    assert share.revoked_at is not None
    assert AuditEvent.objects.filter(action="license.share_revoked").exists()


def test_revoking_a_share_again_says_so(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    # A double click or a page from before the revocation: it was a 404 page.
    share = LicenseShare.objects.create(license=license, email="team@customer.example")
    url = reverse("share-revoke", args=[share.pk])
    first = client.post(url, {"confirm": "1"}, follow=True)
    assert "team@customer.example no longer has access" in _messages(first)
    revoked_at = LicenseShare.objects.get().revoked_at
    again = client.post(url, {"confirm": "1"})
    assert again.status_code == 302 and again["Location"] == _detail(license)
    assert _messages(client.get(again["Location"])) == "This share was already revoked."
    assert LicenseShare.objects.get().revoked_at == revoked_at
    assert AuditEvent.objects.filter(action="license.share_revoked").count() == 1
    # Someone who never could revoke it still finds nothing there, revoked or not.
    outsider = MembershipFactory(role="admin")
    client.force_login(outsider.user)
    assert client.post(url).status_code == 404
    live = LicenseShare.objects.create(license=license, email="ops@customer.example")
    assert client.post(reverse("share-revoke", args=[live.pk])).status_code == 404
    assert LicenseShare.objects.get(pk=live.pk).revoked_at is None


# -- custom data -------------------------------------------------------------------------------


def test_admin_defines_fields_members_cannot(client, admin) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("custom-fields"),
        {"name": "Site", "field_type": "choice", "choices": "Lisbon", "position": 0},
    )
    assert "at least two options" in response.content.decode()
    client.post(
        reverse("custom-fields"),
        {"name": "Site", "field_type": "choice", "choices": "Lisbon\nPorto", "position": 0},
    )
    assert CustomField.objects.get().choice_list == ["Lisbon", "Porto"]
    duplicate = client.post(
        reverse("custom-fields"), {"name": "site", "field_type": "text", "position": 0}
    )
    assert "already a field called" in duplicate.content.decode()
    member = MembershipFactory(organization=admin.organization, role="member")
    client.force_login(member.user)
    assert (
        client.post(
            reverse("custom-fields"), {"name": "X", "field_type": "text", "position": 0}
        ).status_code
        == 403
    )


def test_custom_fields_page_tells_a_member_who_defines_them(client, admin) -> None:  # type: ignore[no-untyped-def]
    """A member reads the fields; the page says who adds them instead of ending there."""
    page = client.get(reverse("custom-fields")).content.decode()
    assert "Add a field" in page and 'data-testid="custom-fields-read-only"' not in page
    member = MembershipFactory(organization=admin.organization, role="member")
    client.force_login(member.user)
    page = client.get(reverse("custom-fields")).content.decode()
    assert "Add a field" not in page
    assert "Only the organization's administrators add and change custom fields." in page


@pytest.mark.parametrize(
    ("field_type", "raw", "stored", "error"),
    [
        ("number", "3,50", "3.5", None),
        ("number", "-0,5", "-0.5", None),
        # A thousands separator was read as a decimal comma: "1,000" was stored as 1. And as a
        # decimal point: "1.000" (a thousand in pt-BR) was stored as 1.
        ("number", "1,000", None, "could mean 1000 or 1"),
        ("number", "1.000", None, "could mean 1000 or 1"),
        ("number", "-12,345", None, "could mean -12345 or -12,3450"),
        ("number", "1,000,000", None, "without thousands separators: 1000000"),
        ("number", "1000", "1000", None),
        ("number", "abc", None, "must be a number"),
        ("number", "NaN", None, "must be a number"),
        ("date", "2027-02-28", "2027-02-28", None),
        ("date", "28/02/2027", None, "YYYY-MM-DD"),
        ("text", "Rack 4", "Rack 4", None),
    ],
)
def test_custom_values_are_validated_by_type(
    client, admin, license, field_type, raw, stored, error
) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(
        organization=admin.organization, name="F", field_type=field_type
    )
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": license.pk}), {f"cf_{field.pk}": raw}
    )
    value = CustomFieldValue.objects.filter(license=license, field=field).first()
    if error:
        assert response.status_code == 400 and error in response.content.decode()
        assert value is None
    else:
        assert value.value == stored
        assert AuditEvent.objects.filter(action="license.custom_data_changed").exists()


def test_required_field(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(organization=admin.organization, name="PO", required=True)
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": license.pk}), {f"cf_{field.pk}": "  "}
    )
    assert response.status_code == 400 and "PO is required" in response.content.decode()


@pytest.mark.parametrize("required", [False, True])
def test_a_field_absent_from_the_form_keeps_its_value(client, admin, license, required) -> None:  # type: ignore[no-untyped-def]
    # The page was opened before an administrator added "Site": saving it wiped the license's
    # Site (the history read Site: "Lisbon" → ""), or was refused as "Site is required" when
    # it is. An input posted empty still clears.
    team = CustomField.objects.create(organization=admin.organization, name="Team")
    site = CustomField.objects.create(
        organization=admin.organization, name="Site", required=required
    )
    CustomFieldValue.objects.create(license=license, field=site, value="Lisbon")
    CustomFieldValue.objects.create(license=license, field=team, value="Ops")
    url = reverse("license-custom-values", kwargs={"pk": license.pk})
    response = client.post(url, {f"cf_{team.pk}": "Infra"})
    assert response.status_code == 302
    values = {v.field.name: v.value for v in CustomFieldValue.objects.filter(license=license)}
    assert values == {"Site": "Lisbon", "Team": "Infra"}
    event = AuditEvent.objects.get(action="license.custom_data_changed")
    assert event.details["changes"] == {"Team": {"from": "Ops", "to": "Infra"}}
    client.post(url, {f"cf_{team.pk}": "", f"cf_{site.pk}": "Porto"})
    values = {v.field.name: v.value for v in CustomFieldValue.objects.filter(license=license)}
    assert values == {"Site": "Porto"}


def test_bulk_custom_values(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    other = LicenseFactory(owner=admin.organization)
    field = CustomField.objects.create(organization=admin.organization, name="Team")
    keep = CustomField.objects.create(organization=admin.organization, name="Keep")
    CustomFieldValue.objects.create(license=other, field=keep, value="untouched")
    form = client.post(reverse("custom-values-bulk"), {"licenses": [license.pk, other.pk]})
    assert form.status_code == 200
    client.post(
        reverse("custom-values-bulk"),
        {
            "licenses": [license.pk, other.pk],
            "apply": "1",
            f"cf_{field.pk}": "Ops",
            f"cf_{keep.pk}": "",
        },
    )
    assert set(CustomFieldValue.objects.filter(field=field).values_list("value", flat=True)) == {
        "Ops"
    }
    assert CustomFieldValue.objects.get(field=keep).value == "untouched"


def _upload(client, content: str, **extra):  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("custom-values-csv"),
        {"file": SimpleUploadedFile("data.csv", content.encode(), "text/csv"), **extra},
    )


def test_csv_upload_preview_then_apply(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    second = LicenseFactory(owner=admin.organization)
    foreign = LicenseFactory()
    CustomField.objects.create(
        organization=admin.organization, name="Seats used", field_type="number"
    )
    CustomField.objects.create(organization=admin.organization, name="Site")
    content = (
        "key,Seats used,Site\n"
        f"{license.key.lower()},12,Lisbon\n"
        f"{second.key},twelve,Porto\n"
        f"{foreign.key},1,X\n"
        "NOPE,1,Y\n"
    )
    response = _upload(client, content)
    preview = response.context["preview"]
    assert [r.line for r in preview.changing] == [2]
    refused = {r.line: r.error for r in preview.refused}
    assert "must be a number" in refused[3]
    assert "No license with this key" in refused[4] and "No license" in refused[5]
    assert not CustomFieldValue.objects.exists()  # nothing written by the preview
    client.post(
        reverse("custom-values-csv"), {"confirm": "1", "preview": response.context["preview_token"]}
    )
    assert dict(CustomFieldValue.objects.values_list("field__name", "value")) == {
        "Seats used": "12",
        "Site": "Lisbon",
    }


def test_csv_apply_writes_the_preview_its_page_showed(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    # Two tabs: file A previewed, then file B. "Apply" on A's page wrote B's changes, which
    # the person never saw: the session keeps the latest preview only.
    CustomField.objects.create(organization=admin.organization, name="Site")
    page_a = _upload(client, f"key,Site\n{license.key},Lisbon\n")
    page_b = _upload(client, f"key,Site\n{license.key},Porto\n")
    response = client.post(
        reverse("custom-values-csv"),
        {"confirm": "1", "preview": page_a.context["preview_token"]},
        follow=True,
    )
    assert "A later upload replaced this preview." in _messages(response)
    assert not CustomFieldValue.objects.exists()
    # B's own page still applies B.
    client.post(
        reverse("custom-values-csv"), {"confirm": "1", "preview": page_b.context["preview_token"]}
    )
    assert CustomFieldValue.objects.get().value == "Porto"
    # And only once.
    response = client.post(
        reverse("custom-values-csv"),
        {"confirm": "1", "preview": page_b.context["preview_token"]},
        follow=True,
    )
    assert "The preview expired" in _messages(response)


def test_csv_apply_writes_only_what_the_preview_showed(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    # The preview listed one change (Room 1 → 2); applying wrote every value of the row, so a
    # colleague's edit of Site made since (Lisbon → Porto) was undone back to the file's
    # Lisbon, which the preview had shown as "No change". A change whose value was edited
    # since is left as it is too, and the page says so.
    second = LicenseFactory(owner=admin.organization)
    site = CustomField.objects.create(organization=admin.organization, name="Site")
    room = CustomField.objects.create(organization=admin.organization, name="Room")
    for lic in (license, second):
        CustomFieldValue.objects.create(license=lic, field=site, value="Lisbon")
        CustomFieldValue.objects.create(license=lic, field=room, value="1")
    page = _upload(client, f"key,Site,Room\n{license.key},Lisbon,2\n{second.key},Lisbon,2\n")
    assert [row.changes for row in page.context["preview"].changing] == [
        {"Room": {"from": "1", "to": "2"}}
    ] * 2
    # Meanwhile, on the license pages: Site of the first, Room of the second.
    CustomFieldValue.objects.filter(license=license, field=site).update(value="Porto")
    CustomFieldValue.objects.filter(license=second, field=room).update(value="7")
    response = client.post(
        reverse("custom-values-csv"),
        {"confirm": "1", "preview": page.context["preview_token"]},
        follow=True,
    )
    values = {
        (v.license_id, v.field.name): v.value
        for v in CustomFieldValue.objects.select_related("field")
    }
    assert values == {
        (license.pk, "Site"): "Porto",
        (license.pk, "Room"): "2",
        (second.pk, "Site"): "Lisbon",
        (second.pk, "Room"): "7",
    }
    text = _messages(response)
    assert "Custom data changed on 1 license." in text
    assert "1 value was changed by someone else after the preview" in text
    (event,) = AuditEvent.objects.filter(action="license.custom_data_changed")
    assert event.details["changes"] == {"Room": {"from": "1", "to": "2"}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("serial,Site\nX,Y\n", "columns are not right"),
        ("key,Colour\nX,Y\n", "columns are not right"),
        ("key\nX\n", "columns are not right"),
        ("\x00\x01binary", "not a CSV file"),
    ],
)
def test_csv_with_wrong_columns(client, admin, license, content, message) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    response = _upload(client, content)
    assert message in response.content.decode()
    assert response.context["preview"] is None


def test_csv_not_utf8(client, admin) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        reverse("custom-values-csv"),
        {"file": SimpleUploadedFile("x.csv", "key,Site\nA,Ã\n".encode("utf-16"), "text/csv")},
    )
    assert "not UTF-8" in response.content.decode()


# -- registration, resend ----------------------------------------------------------------------


def test_edit_support_registration(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    registration = license.registration
    data = {name: getattr(registration, name) for name in SupportRegistration.FIELDS}
    bad = client.post(
        reverse("license-registration", kwargs={"pk": license.pk}),
        {**data, "technical_email": "nope"},
    )
    assert bad.status_code == 200 and "Enter a valid email address" in bad.content.decode()
    client.post(
        reverse("license-registration", kwargs={"pk": license.pk}),
        {**data, "technical_email": "new-tech@customer.example"},
    )
    registration.refresh_from_db()
    assert registration.technical_email == "new-tech@customer.example"
    event = AuditEvent.objects.get(action="license.registration_changed")
    assert event.details["changes"]["technical_email"]["to"] == "new-tech@customer.example"


def test_email_again(client, admin, license, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("license-email", kwargs={"pk": license.pk}))
    # The technical contact's body, and the administrator's (with the link to the license).
    assert sorted(address for message in mail.outbox for address in message.to) == sorted(
        [license.registration.technical_email, admin.user.email]
    )
    for email in mail.outbox:
        assert license.key in email.body and email.attachments


def test_email_again_is_limited_per_license_per_hour(
    client, admin, license, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # The button sent as many emails as it was pressed, to a technical contact anyone allowed
    # to manage data may set: 30 presses, 30 emails with the key.
    settings.PORTAL_KEY_EMAILS_PER_LICENSE_PER_HOUR = 2
    url = reverse("license-email", kwargs={"pk": license.pk})
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            client.post(url)
        response = client.post(url, follow=True)
    assert len(mail.outbox) == 2 * 2  # each with two bodies: with and without the link
    assert "already emailed 2 times in the last hour" in _messages(response)
    assert AuditEvent.objects.filter(action="license.emailed").count() == 2
    # An hour later it may be sent again (the audit trail is append-only: the clock moves).
    later = timezone.now() + timedelta(hours=1, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url)
    assert len(mail.outbox) == 3 * 2


def test_email_again_is_limited_per_technical_contact_across_licenses(
    client, admin, settings, monkeypatch, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # Each license had its own 5 an hour: an organization whose licenses all name one technical
    # contact, an address anyone allowed to manage data may type, could send that mailbox five
    # emails with a key per license per hour, 100 an hour with 20 licenses.
    settings.PORTAL_KEY_EMAILS_PER_LICENSE_PER_HOUR = 2
    settings.PORTAL_KEY_EMAILS_PER_ADDRESS_PER_HOUR = 3
    first, second, third = (LicenseFactory(owner=admin.organization) for _ in range(3))
    # The same mailbox, however it was typed.
    third.registration.technical_email = "Tiago@Customer.EXAMPLE"
    third.registration.save()
    elsewhere = LicenseFactory(owner=admin.organization)
    elsewhere.registration.technical_email = "someone-else@customer.example"
    elsewhere.registration.save()

    def email(license: License):  # type: ignore[no-untyped-def]
        return client.post(reverse("license-email", kwargs={"pk": license.pk}), follow=True)

    with django_capture_on_commit_callbacks(execute=True):
        email(first)
        email(first)
        email(second)
        refused = email(third)
        assert "emailed to" in _messages(email(elsewhere))
    assert refused.status_code == 200
    assert (
        "tiago@customer.example, this license's technical contact, was already emailed many "
        "license keys in the last hour. To protect that mailbox, try again in 60 minutes"
    ) in _messages(refused)
    assert "emailed to" not in _messages(refused)
    # Refused: nothing sent, nothing recorded.
    contacts = [e.details["contact"] for e in AuditEvent.objects.filter(action="license.emailed")]
    assert sorted(contacts) == ["someone-else@customer.example"] + ["tiago@customer.example"] * 3
    assert sum("tiago@customer.example" in m.to for m in mail.outbox) == 3
    # Another organization's license naming the address shares its budget (the service alone).
    from licensing.services import license_email_again

    other = MembershipFactory()
    stranger = LicenseFactory(owner=other.organization)
    with pytest.raises(LicensingError, match="technical contact"):
        license_email_again(license=stranger, actor=other.user)
    # As each email leaves the hour, one more may go.
    later = timezone.now() + timedelta(hours=1, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with django_capture_on_commit_callbacks(execute=True):
        assert "emailed to" in _messages(email(third))
    assert sum("tiago@customer.example" in m.to for m in mail.outbox) == 4


@pytest.mark.parametrize("status", [License.Status.SUPERSEDED, License.Status.REVOKED])
def test_a_replaced_key_is_not_emailed_again(
    client, admin, license, status, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # "Email key again" sent a superseded or revoked key to the technical contact as "Here is
    # your license key … Install it with the product", with no word of its status.
    License.objects.filter(pk=license.pk).update(status=status)
    assert (
        reverse("license-email", kwargs={"pk": license.pk})
        not in client.get(_detail(license)).content.decode()
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("license-email", kwargs={"pk": license.pk}), follow=True)
    assert "is no longer active" in _messages(response)
    assert not mail.outbox
    assert not AuditEvent.objects.filter(action="license.emailed").exists()


def test_email_again_sends_the_license_as_it_is_once_locked(
    client, admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # The view reads the license, then the service waits for its row lock while a colleague's
    # rehost commits. The email was built from the view's copy: the key the rehost had just
    # revoked, its old host, in a signed file, sent as "Here is your license key".
    from licensing.services import license_email_again, license_rehost, registration_update

    version = ProductVersionFactory(product=ProductFactory(node_locked=True, rehost_limit=3))
    license = LicenseFactory(owner=admin.organization, version=version, host_id="HOST-A")
    read_by_the_view = License.objects.get(pk=license.pk)
    moved = license_rehost(license=license, host_id="HOST-B", actor=UserFactory())
    registration_update(
        license=license, actor=admin.user, data={"technical_email": "new-tech@customer.example"}
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        recipients = license_email_again(license=read_by_the_view, actor=admin.user)
    # The technical contact, no member, reads a body without the page's link (one email each).
    (email,) = [sent for sent in mail.outbox if "new-tech@customer.example" in sent.to]
    for sent in mail.outbox:
        assert moved.key in sent.body and "HOST-B" in sent.body
        assert read_by_the_view.key not in sent.body
    assert "new-tech@customer.example" in recipients
    ((_name, content, _type),) = email.attachments
    from licensing.licensefile import verify_license_file
    from licensing.signing import get_public_key

    payload = verify_license_file(
        content.decode(), license_key=moved.key, public_key=get_public_key()
    )
    assert payload["data"]["attributes"]["metadata"]["hostId"] == "HOST-B"
    # A license superseded while the request waited is refused, as on its page.
    License.objects.filter(pk=license.pk).update(status=License.Status.SUPERSEDED)
    with pytest.raises(LicensingError, match="no longer active"):
        license_email_again(license=read_by_the_view, actor=admin.user)


# -- renewal -----------------------------------------------------------------------------------


def test_renew_from_the_license_page(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    serial = SerialNumberFactory(version=license.version, kind="renewal", maintenance_months=12)
    old_end, old_file = license.maintenance_end, license.file_issued_at
    response = client.post(
        reverse("license-renew", kwargs={"pk": license.pk}), {"serial": serial.code}, follow=True
    )
    assert "Maintenance renewed" in _messages(response)
    license.refresh_from_db()
    assert license.maintenance_end == add_months(old_end, 12)
    assert license.file_issued_at > old_file
    assert license.registration_id is not None


def test_renew_submitted_twice_lands_on_the_license_renewed_once(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    # The second submit (a double click, the page sent again) said "Your organization already
    # redeemed this serial number." with a 400, after a renewal that had worked, and counted a
    # failed code against the person's budget.
    serial = SerialNumberFactory(version=license.version, kind="renewal", maintenance_months=12)
    url = reverse("license-renew", kwargs={"pk": license.pk})
    old_end = license.maintenance_end
    first = client.post(url, {"serial": serial.code})
    second = client.post(url, {"serial": serial.code}, follow=True)
    assert first.status_code == 302 and second.redirect_chain == [(_detail(license), 302)]
    messages = _messages(second)
    assert "Maintenance renewed" in messages
    assert "already applied to this license" in messages
    license.refresh_from_db()
    assert license.maintenance_end == add_months(old_end, 12)
    assert AuditEvent.objects.filter(action="license.renewed").count() == 1
    assert not FailedCodeAttempt.objects.exists()


def test_a_serial_renewing_another_license_is_refused_without_a_failed_code(
    client, admin, license
) -> None:  # type: ignore[no-untyped-def]
    other = LicenseFactory(owner=admin.organization, version=license.version)
    serial = SerialNumberFactory(version=license.version, kind="renewal")
    client.post(reverse("license-renew", kwargs={"pk": other.pk}), {"serial": serial.code})
    end = license.maintenance_end
    response = client.post(
        reverse("license-renew", kwargs={"pk": license.pk}), {"serial": serial.code}
    )
    assert response.status_code == 400
    assert "already redeemed this serial number" in _field(response, "serial")[1]
    license.refresh_from_db()
    assert license.maintenance_end == end
    assert not FailedCodeAttempt.objects.exists()  # the organization's own serial, no guess


def test_renew_with_wrong_serials(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    url = reverse("license-renew", kwargs={"pk": license.pk})
    new_purchase = SerialNumberFactory(version=license.version)
    other_product = SerialNumberFactory(kind="renewal")
    cases = [
        (new_purchase.code, "not a maintenance renewal serial"),
        (other_product.code, "has no active one"),
        (generate_code(), "could not find"),
        ("ABC$", "does not look like a serial"),
        ("", "Enter the renewal serial number"),
    ]
    end = license.maintenance_end
    for code, message in cases:
        response = client.post(url, {"serial": code})
        assert response.status_code == 400 and message in _field(response, "serial")[1], code
    license.refresh_from_db()
    assert license.maintenance_end == end


def test_a_refused_renewal_shows_its_error_at_the_serial_and_keeps_it(
    client, admin, license
) -> None:  # type: ignore[no-untyped-def]
    # A refused renewal redirected to the page with the error in a message at its top and the
    # serial number field empty: the person retyped a 25-character serial to fix one typo.
    url = reverse("license-renew", kwargs={"pk": license.pk})
    new_purchase = SerialNumberFactory(version=license.version)
    unknown = generate_code()
    cases = [
        # The service refuses (LicensingError), the code's format, the lookup, the form.
        (new_purchase.code, "This is not a maintenance renewal serial number."),
        ("ABC$", "does not look like a serial"),
        (unknown, "could not find"),
        ("", "Enter the renewal serial number"),
    ]
    end, file_issued = license.maintenance_end, license.file_issued_at
    for code, message in cases:
        response = client.post(url, {"serial": code})
        assert response.status_code == 400, code
        value, error = _field(response, "serial")
        assert value == code and message in error, (code, error)
        assert _messages(response) == "Maintenance was not renewed: see below."
    license.refresh_from_db()
    new_purchase.refresh_from_db()
    assert (license.maintenance_end, license.file_issued_at) == (end, file_issued)
    assert new_purchase.status == "open"
    assert not AuditEvent.objects.filter(action="license.renewed").exists()


@pytest.mark.parametrize("status", [License.Status.SUPERSEDED, License.Status.REVOKED])
def test_renew_a_license_replaced_meanwhile(client, admin, license, status) -> None:  # type: ignore[no-untyped-def]
    # The page still offers the renewal form; the license was upgraded (or revoked) meanwhile.
    # This said "Choose which of your … licenses this serial applies to." (there is no choice
    # on this page) and counted a failed code against the person's budget.
    serial = SerialNumberFactory(version=license.version, kind="renewal")
    License.objects.filter(pk=license.pk).update(status=status)
    LicenseFactory(owner=admin.organization, version=license.version)  # its successor
    response = client.post(
        reverse("license-renew", kwargs={"pk": license.pk}), {"serial": serial.code}, follow=True
    )
    assert "Only active licenses can be renewed." in _messages(response)
    assert "Choose which" not in _messages(response)
    serial.refresh_from_db()
    assert serial.status == "open"
    assert not FailedCodeAttempt.objects.exists()


def test_an_ef_key_page_offers_no_renewal_serial_form(client, admin) -> None:  # type: ignore[no-untyped-def]
    # The form was offered and refused whatever was typed: EF maintenance follows the contract.
    ef_key = LicenseFactory(owner=admin.organization, source=License.Source.EF_DRAWDOWN)
    page = client.get(_detail(ef_key)).content.decode()
    assert reverse("license-renew", kwargs={"pk": ef_key.pk}) not in page
    bought = LicenseFactory(owner=admin.organization)
    assert (
        reverse("license-renew", kwargs={"pk": bought.pk})
        in client.get(_detail(bought)).content.decode()
    )


SELECTED = re.compile(r'<option value="([^"]*)"[^>]*selected')


def test_a_value_no_longer_among_the_choices_survives_saving_other_fields(
    client, admin, license
) -> None:  # type: ignore[no-untyped-def]
    # "Bronze" was an option when it was chosen; the field's options were edited since. The
    # license page's select did not offer it (it showed "—"), so saving any other custom value
    # wiped it without a word; and a CSV exported and uploaded unchanged was refused.
    tier = CustomField.objects.create(
        organization=admin.organization, name="Tier", field_type="choice", choices="Gold\nSilver"
    )
    site = CustomField.objects.create(organization=admin.organization, name="Site")
    CustomFieldValue.objects.create(license=license, field=tier, value="Bronze")
    page = client.get(_detail(license)).content.decode()
    select = re.search(rf'<select name="cf_{tier.pk}".*?</select>', page, re.S)
    assert select and SELECTED.findall(select.group()) == ["Bronze"]  # what a browser posts
    client.post(
        reverse("license-custom-values", kwargs={"pk": license.pk}),
        {f"cf_{tier.pk}": "Bronze", f"cf_{site.pk}": "Lisbon"},
    )
    values = dict(CustomFieldValue.objects.values_list("field__name", "value"))
    assert values == {"Tier": "Bronze", "Site": "Lisbon"}
    # It stays a value of its own: it cannot be chosen for a license that does not have it.
    other = LicenseFactory(owner=admin.organization)
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": other.pk}), {f"cf_{tier.pk}": "Bronze"}
    )
    assert response.status_code == 400
    assert not CustomFieldValue.objects.filter(license=other).exists()
    # The export → upload round trip keeps it too.
    preview = _upload(client, f"key,Tier,Site\n{license.key},Bronze,Porto\n").context["preview"]
    assert not preview.refused
    assert [row.changes for row in preview.changing] == [
        {"Site": {"from": "Lisbon", "to": "Porto"}}
    ]


# -- rehost ------------------------------------------------------------------------------------


@pytest.fixture
def node_locked(admin):  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(product=ProductFactory(node_locked=True, rehost_limit=2))
    return LicenseFactory(owner=admin.organization, version=version, host_id="HOST-A")


def test_rehost_issues_a_new_key_and_revokes_the_old(
    client, admin, node_locked, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    old_key = node_locked.key
    url = reverse("license-rehost", kwargs={"pk": node_locked.pk})
    # First a page that says the current key stops working; nothing changes yet.
    confirm = client.post(url, {"host_id": "  HOST-B  "})
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "stops working as soon as you confirm" in text and "HOST-B" in text
    assert "After this move, 1 move is left in the last 12 months." in text
    node_locked.refresh_from_db()
    assert node_locked.key == old_key and not RetiredKey.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"host_id": "HOST-B", "confirm": "1"})
    node_locked.refresh_from_db()
    assert node_locked.host_id == "HOST-B" and node_locked.key != old_key
    assert RetiredKey.objects.get().key == old_key
    assert License.objects.count() == 1  # same license, new key
    assert "HOST-B" in mail.outbox[0].body and node_locked.key in mail.outbox[0].body
    event = AuditEvent.objects.get(action="license.rehosted")
    assert event.details["old_key"] == old_key
    page = client.get(_detail(node_locked)).content.decode()
    assert old_key in page  # listed as revoked


def test_rehost_confirmed_after_someone_else_moved_it(client, admin, node_locked) -> None:  # type: ignore[no-untyped-def]
    # The page said "the current key (host HOST-A) stops working"; a colleague moved the
    # license to HOST-C meanwhile. Confirming revoked HOST-C's new key, which the page never
    # named and which may already be installed there.
    from licensing.services import license_rehost

    url = reverse("license-rehost", kwargs={"pk": node_locked.pk})
    page = client.post(url, {"host_id": "HOST-B"})
    form = dict(
        re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.content.decode())
    )
    assert set(form) >= {"host_id", "confirm", "stamp"}
    moved = license_rehost(license=node_locked, host_id="HOST-C", actor=UserFactory())
    response = client.post(url, form)
    assert response.status_code == 400
    assert (
        "was moved to host HOST-C with a new key while you were confirming"
        in (_field(response, "host_id")[1])
    )
    node_locked.refresh_from_db()
    assert (node_locked.host_id, node_locked.key) == ("HOST-C", moved.key)
    # A tampered stamp is a stamp that does not match, not a server error.
    for tampered in ("é", "\x00", "x" * 5000):
        response = client.post(url, {**form, "stamp": tampered})
        assert response.status_code == 400
        assert "while you were confirming" in _field(response, "host_id")[1]
    # A confirmation page of the license as it is now moves it.
    page = client.post(url, {"host_id": "HOST-B"})
    form = dict(
        re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.content.decode())
    )
    client.post(url, form)
    node_locked.refresh_from_db()
    assert node_locked.host_id == "HOST-B"


@pytest.mark.parametrize(
    ("host", "message"), [("", "Enter the host ID"), ("host-a", "already bound")]
)
def test_rehost_bad_input(client, admin, node_locked, host, message) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("license-rehost", kwargs={"pk": node_locked.pk}), {"host_id": host}
    )
    assert response.status_code == 400 and message in _field(response, "host_id")[1]
    assert not RetiredKey.objects.exists()


def test_a_refused_rehost_shows_its_error_at_the_host_id_and_keeps_it(
    client, admin, node_locked
) -> None:  # type: ignore[no-untyped-def]
    # A refused move redirected to the page with the error in a message at its top and the new
    # host ID field empty.
    from licensing.services import license_rehost

    url = reverse("license-rehost", kwargs={"pk": node_locked.pk})
    key = node_locked.key
    for host, message in [("", "Enter the host ID"), ("host-a", "already bound to host-a")]:
        response = client.post(url, {"host_id": host})
        assert response.status_code == 400, host
        value, error = _field(response, "host_id")
        assert value == host and message in error, (host, error)
        assert _messages(response) == "The license was not moved: see below."
    # The service refuses the confirmed move (a colleague moved the license meanwhile): at the
    # field too, on the page as it is now.
    page = client.post(url, {"host_id": "HOST-B"})
    form = dict(
        re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.content.decode())
    )
    moved = license_rehost(license=node_locked, host_id="HOST-C", actor=UserFactory())
    response = client.post(url, form)
    assert response.status_code == 400
    value, error = _field(response, "host_id")
    assert value == "HOST-B" and "while you were confirming" in error
    assert moved.key in response.content.decode() and key in response.content.decode()
    node_locked.refresh_from_db()
    assert (node_locked.host_id, node_locked.key) == ("HOST-C", moved.key)
    assert RetiredKey.objects.count() == 1


def test_rehost_limit(client, admin, node_locked) -> None:  # type: ignore[no-untyped-def]
    url = reverse("license-rehost", kwargs={"pk": node_locked.pk})
    client.post(url, {"host_id": "B", "confirm": "1"})
    client.post(url, {"host_id": "C", "confirm": "1"})
    # Refused at once, without a confirmation page for a move that cannot happen.
    response = client.post(url, {"host_id": "D"}, follow=True)
    assert "Contact customer care" in _messages(response)
    node_locked.refresh_from_db()
    assert node_locked.host_id == "C"
    # Moves older than 12 months no longer count.
    RetiredKey.objects.update(retired_at=timezone.now() - timedelta(days=400))
    client.post(url, {"host_id": "D", "confirm": "1"})
    node_locked.refresh_from_db()
    assert node_locked.host_id == "D"


def test_floating_license_cannot_be_rehosted(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("license-rehost", kwargs={"pk": license.pk}), {"host_id": "X"}, follow=True
    )
    assert "not node-locked" in _messages(response)


# -- detail, certificate -----------------------------------------------------------------------


def test_detail_shows_source_registration_custom_data_and_history(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(organization=admin.organization, name="Cost center")
    CustomFieldValue.objects.create(license=license, field=field, value="CC-1")
    LicenseShare.objects.create(license=license, email="viewer@x.example")
    page = client.get(_detail(license)).content.decode()
    for text in (
        license.key,
        license.registration.company,
        "Cost center",
        "CC-1",
        "viewer@x.example",
        "Serial number",
        "Issued: 10",
    ):
        assert text in page, text


def test_detail_query_count(client, admin, license, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        LicenseShare.objects.create(license=license, email=f"{_}@x.example")
    with django_assert_max_num_queries(16):
        assert client.get(_detail(license)).status_code == 200


def test_certificate_html_and_pdf(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    page = client.get(reverse("license-certificate", kwargs={"pk": license.pk}))
    content = page.content.decode()
    assert license.key in content and "<svg" in content and "License certificate" in content
    pdf = client.get(reverse("license-certificate-pdf", kwargs={"pk": license.pk}))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_read_only_recipient_sees_no_manage_forms(client, license) -> None:  # type: ignore[no-untyped-def]
    reader = UserFactory()
    MembershipFactory(user=reader)
    LicenseShare.objects.create(license=license, email=reader.email, user=reader)
    client.force_login(reader)
    page = client.get(_detail(license)).content.decode()
    assert "Renew maintenance" not in page and "Email key again" not in page
    assert "Read-only" in page


def test_verifying_an_email_address_binds_shares_sent_to_it(license) -> None:  # type: ignore[no-untyped-def]
    from allauth.account.models import EmailAddress

    share = LicenseShare.objects.create(license=license, email="later@customer.example")
    user = UserFactory(email="later@customer.example")
    address = EmailAddress.objects.create(user=user, email=user.email, primary=True)
    address.set_verified(commit=True)
    from allauth.account.signals import email_confirmed

    email_confirmed.send(sender=EmailAddress, request=None, email_address=address)
    share.refresh_from_db()
    assert share.user == user


def test_failed_renewal_serials_spend_the_budget_and_are_audited(client, admin, license) -> None:  # type: ignore[no-untyped-def]
    url = reverse("license-renew", kwargs={"pk": license.pk})
    for _ in range(10):
        client.post(url, {"serial": generate_code()})
    typed = generate_code()
    response = client.post(url, {"serial": typed})
    assert response.status_code == 400
    value, error = _field(response, "serial")
    assert value == typed and "Too many codes were not recognised" in error
    assert AuditEvent.objects.filter(action="serial.rate_limited").count() == 1


def test_a_csv_upload_is_read_no_further_than_its_limit(client, admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The upload was read whole into memory, then refused past 2 MB: the web server lets a
    # body of 2 GB through (release uploads), so one upload could exhaust a worker's memory.
    from django.core.files.uploadedfile import SimpleUploadedFile

    from licensing.services import MAX_CSV_BYTES
    from licensing.views import custom_data
    from tests.licensing.factories import ReadCounter

    CustomField.objects.create(organization=admin.organization, name="Site")
    read: list[int] = []
    preview = custom_data.custom_values_csv_preview

    def spy(*, upload, **kwargs):  # type: ignore[no-untyped-def]
        counted = ReadCounter(upload)
        result = preview(upload=counted, **kwargs)
        read.append(counted.total)
        return result

    monkeypatch.setattr(custom_data, "custom_values_csv_preview", spy)
    big = b"key,Site\n" + b"A,B\n" * (MAX_CSV_BYTES // 4 + 1000)
    response = client.post(
        reverse("custom-values-csv"), {"file": SimpleUploadedFile("big.csv", big, "text/csv")}
    )
    assert read == [MAX_CSV_BYTES + 1]
    assert response.status_code == 200 and "larger than 2 MB" in response.content.decode()
    assert not CustomFieldValue.objects.exists()


def test_email_again_is_limited_per_copied_administrator_across_licenses(
    settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # The owner's administrators get a copy of every key of a license a partner obtained: ten
    # such licenses, each naming another technical contact, sent them 50 copies an hour, the
    # address limit counting the technical contacts only.
    from licensing.services import license_email_again
    from tests.licensing.factories import partner_obtained_licenses

    settings.PORTAL_KEY_EMAILS_PER_LICENSE_PER_HOUR = 5
    settings.PORTAL_KEY_EMAILS_PER_ADDRESS_PER_HOUR = 3
    obtained = partner_obtained_licenses(4)
    owner_admin, member, licenses = obtained.admin, obtained.member, obtained.licenses
    customer = owner_admin.organization
    address = owner_admin.user.email.lower()
    with django_capture_on_commit_callbacks(execute=True):
        for lic in licenses[:3]:
            assert address in license_email_again(license=lic, actor=member)
        with pytest.raises(LicensingError) as refused:
            license_email_again(license=licenses[3], actor=member)
        assert str(refused.value) == (
            f"{address}, an administrator of {customer.name} who gets a copy of this license's "
            "emails, was already emailed many license keys in the last hour. To protect that "
            "mailbox, try again in 60 minutes, or download the license file from this page."
        )
        # The person clicking is not counted: the administrator may still send their own.
        assert address in license_email_again(license=licenses[3], actor=owner_admin.user)
    events = AuditEvent.objects.filter(action="license.emailed").order_by("created_at")
    assert [e.details["copied"] for e in events] == [[address]] * 3 + [[]]


def test_an_address_budget_counts_the_whole_address_only() -> None:
    from portal.ratelimit import address_budget

    for _ in range(3):
        AuditEvent.objects.create(
            action="license.emailed",
            details={"contact": "c@customer.example", "copied": ["xa@b.example", "d@b.example"]},
        )
    budget = {
        address: address_budget(address=address, action="license.emailed", limit=3).exhausted
        for address in ("xa@b.example", "A@B.example", "d@b.example", "c@customer.example")
    }
    assert budget == {
        "xa@b.example": True,
        "A@B.example": False,
        "d@b.example": True,
        "c@customer.example": True,
    }
