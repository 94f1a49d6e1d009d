"""What a share recipient sees (README, "What a share recipient sees"), on every page.

A recipient sees the license, its file, its certificate, its support registration and its own
dates and events. Not: the owner's custom data, other recipients, people named in its history,
the owner's purchase reference, or related licenses the recipient may not see itself.
"""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue, License, LicenseShare
from licensing.services import IssueSource, license_issue, license_share
from tests.licensing.factories import (
    LicenseFactory,
    ProductVersionFactory,
    SupportRegistrationFactory,
)
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET_VALUE = "CC-4471-CONFIDENTIAL"


@pytest.fixture
def world():  # type: ignore[no-untyped-def]
    owner = MembershipFactory(role="admin", user__email="owner-admin@owner.example")
    colleague = MembershipFactory(
        role="member", organization=owner.organization, user__email="colleague@owner.example"
    )
    old = LicenseFactory(owner=owner.organization, quantity=10, source_ref="SERIAL-OWNER-1")
    # A version upgrade of part of `old`: `old` stays active, and is not shared.
    new = license_issue(
        source=IssueSource(
            kind=License.Source.UPGRADE,
            ref="NOTIF-OWNER-1",
            version=ProductVersionFactory(product=old.version.product),
            quantity=4,
            maintenance_start=old.maintenance_start,
            maintenance_end=old.maintenance_end,
            supersedes=old,
            retire_superseded=False,
        ),
        owner=owner.organization,
        registration=SupportRegistrationFactory(organization=owner.organization),
        acting_user=colleague.user,
        notify=False,
    )
    field = CustomField.objects.create(organization=owner.organization, name="Cost centre")
    CustomFieldValue.objects.create(license=new, field=field, value=SECRET_VALUE)
    reader = MembershipFactory(user__email="reader@elsewhere.example")
    license_share(licenses=[new], email=reader.user.email, access="read", actor=owner.user)
    license_share(licenses=[new], email="another@third.example", access="manage", actor=owner.user)
    return {
        "owner": owner,
        "colleague": colleague,
        "old": old,
        "new": new,
        "reader": reader,
    }


def _page(client, name: str, license: License) -> str:  # type: ignore[no-untyped-def]
    response = client.get(reverse(name, kwargs={"pk": license.pk}))
    assert response.status_code == 200, name
    return response.content.decode(errors="replace")


NOT_FOR_RECIPIENTS = [
    SECRET_VALUE,
    "Cost centre",
    "another@third.example",
    "owner-admin@owner.example",
    "colleague@owner.example",
    "NOTIF-OWNER-1",
]


def test_read_only_recipient_does_not_see_a_related_license_it_may_not_see(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["reader"].user)
    page = _page(client, "license-detail", world["new"])
    assert world["new"].key in page
    assert world["old"].key not in page
    # `new` took seats of `old`, still active: it names it "Upgraded from", not "Supersedes".
    assert "Upgraded from" not in page
    # Shared too: now it may appear, key and all.
    LicenseShare.objects.create(
        license=world["old"], email=world["reader"].user.email, user=world["reader"].user
    )
    page = _page(client, "license-detail", world["new"])
    assert "Upgraded from" in page and world["old"].key in page


def test_superseded_by_appears_only_when_the_newer_license_is_visible(client, world) -> None:  # type: ignore[no-untyped-def]
    # Said of a license no longer active only: `old`, upgraded in part, is not superseded
    # (tests/licensing/test_license_page_status.py), so it is made so here.
    License.objects.filter(pk=world["old"].pk).update(status=License.Status.SUPERSEDED)
    stranger = MembershipFactory()
    LicenseShare.objects.create(license=world["old"], email=stranger.user.email, user=stranger.user)
    client.force_login(stranger.user)
    page = _page(client, "license-detail", world["old"])
    assert "Superseded by" not in page and world["new"].key not in page
    client.force_login(world["owner"].user)
    assert "Superseded by" in _page(client, "license-detail", world["old"])


def test_recipient_pages_follow_the_rule(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["reader"].user)
    new = world["new"]
    pages = {
        name: _page(client, name, new)
        for name in ("license-detail", "license-certificate", "license-certificate-pdf")
    }
    pages["list"] = client.get(reverse("license-list")).content.decode()
    pages["csv"] = b"".join(
        client.get(reverse("license-export", args=["csv"])).streaming_content  # type: ignore[attr-defined]
    ).decode()
    for name, content in pages.items():
        assert new.key in content or name == "license-certificate-pdf", name
        for secret in NOT_FOR_RECIPIENTS:
            assert secret not in content, (name, secret)
    # The registration is the license's own: the recipient sees it.
    assert new.registration.technical_email in pages["license-detail"]
    # The history says what happened to the license, not who did it.
    assert "Issued: 4" in pages["license-detail"]
    # Searching the owner's custom data finds nothing for the recipient.
    found = client.get(reverse("license-list"), {"q": SECRET_VALUE})
    assert found.context["page"].paginator.count == 0
    found = client.get(reverse("license-list"), {"q": "NOTIF-OWNER"})
    assert found.context["page"].paginator.count == 0
    # The Get-a-key result page is the owner's: it names the owner's people.
    result = client.get(reverse("get-a-key-result", kwargs={"pk": new.pk}))
    assert result.status_code == 404


def test_the_owner_still_sees_everything(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["owner"].user)
    page = _page(client, "license-detail", world["new"])
    for shown in (SECRET_VALUE, "Cost centre", "another@third.example", "NOTIF-OWNER-1"):
        assert shown in page
    assert world["old"].key in page and "colleague@owner.example" in page
    found = client.get(reverse("license-list"), {"q": SECRET_VALUE})
    assert found.context["page"].paginator.count == 1


def test_a_manage_recipient_cannot_read_or_write_the_owners_custom_data(client, world) -> None:  # type: ignore[no-untyped-def]
    manager = UserFactory(email="another@third.example")
    MembershipFactory(user=manager)
    LicenseShare.objects.filter(email=manager.email).update(user=manager)
    client.force_login(manager)
    field = CustomField.objects.get()
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": world["new"].pk}),
        {f"cf_{field.pk}": "overwritten"},
    )
    assert response.status_code == 403
    assert CustomFieldValue.objects.get().value == SECRET_VALUE
    assert "Cost centre" not in _page(client, "license-detail", world["new"])


# -- custom data in bulk: administrators only, as the README says -------------------------------


def test_members_cannot_bulk_edit_or_upload_custom_data(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["colleague"].user)
    field = CustomField.objects.get()
    new = world["new"]
    response = client.post(
        reverse("custom-values-bulk"),
        {"licenses": [new.pk], "apply": "1", f"cf_{field.pk}": "changed"},
    )
    assert response.status_code == 403
    upload = io.BytesIO(f"key,Cost centre\n{new.key},changed\n".encode())
    upload.name = "data.csv"
    assert client.post(reverse("custom-values-csv"), {"file": upload}).status_code == 403
    assert client.get(reverse("custom-values-csv")).status_code == 403
    assert CustomFieldValue.objects.get().value == SECRET_VALUE
    listing = client.get(reverse("license-list")).content.decode()
    assert reverse("custom-values-bulk") not in listing
    assert reverse("custom-values-csv") not in listing
    # One license's custom data stays a member's to edit.
    response = client.post(
        reverse("license-custom-values", kwargs={"pk": new.pk}), {f"cf_{field.pk}": "CC-1"}
    )
    assert response.status_code == 302 and CustomFieldValue.objects.get().value == "CC-1"


def test_administrators_keep_bulk_custom_data(client, world) -> None:  # type: ignore[no-untyped-def]
    client.force_login(world["owner"].user)
    field = CustomField.objects.get()
    listing = client.get(reverse("license-list")).content.decode()
    assert reverse("custom-values-bulk") in listing and reverse("custom-values-csv") in listing
    response = client.post(
        reverse("custom-values-bulk"),
        {"licenses": [world["new"].pk], "apply": "1", f"cf_{field.pk}": "CC-2"},
    )
    assert response.status_code == 302 and CustomFieldValue.objects.get().value == "CC-2"


def test_a_recipient_finds_a_shared_license_by_its_support_contacts(client, world) -> None:  # type: ignore[no-untyped-def]
    """The registration belongs to the owner, yet the recipient sees it: the search reaches it
    through the share, and stops reaching it when the share is revoked."""
    new = world["new"]
    contact = new.registration.technical_email
    client.force_login(world["reader"].user)
    found = client.get(reverse("license-list"), {"q": contact})
    assert [row["license"].key for row in found.context["rows"]] == [new.key]
    LicenseShare.objects.filter(license=new, user=world["reader"].user).update(
        revoked_at=new.issued_at
    )
    found = client.get(reverse("license-list"), {"q": contact})
    assert found.context["page"].paginator.count == 0


def test_the_license_page_links_to_the_software_for_its_owners_only(client, world) -> None:  # type: ignore[no-untyped-def]
    downloads = reverse("fileconnect-license", kwargs={"pk": world["new"].pk})
    client.force_login(world["colleague"].user)
    assert f'href="{downloads}" data-testid="license-downloads"' in _page(
        client, "license-detail", world["new"]
    )
    client.force_login(world["reader"].user)  # FileConnect is the owner's
    assert downloads not in _page(client, "license-detail", world["new"])
