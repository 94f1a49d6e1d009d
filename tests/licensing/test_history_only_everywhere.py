"""A superseded or revoked license is kept as history on every path that changes data (the
bulk custom-data form, the CSV upload), says which it is, and is never offered as the way to
the software; found by the second review of the lifecycle changes."""

from __future__ import annotations

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from licensing.models import CustomField, CustomFieldValue, License
from portal.models import Membership
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _license(owner, status: str = License.Status.ACTIVE, supersedes=None) -> License:  # type: ignore[no-untyped-def]
    """A license in `status` (the factory mints active ones through license_issue)."""
    license = LicenseFactory(owner=owner)
    License.objects.filter(pk=license.pk).update(status=status, supersedes=supersedes)
    license.refresh_from_db()
    return license


@pytest.fixture
def admin(client: Client) -> Membership:
    membership = MembershipFactory(role=Membership.Role.ADMIN)
    client.force_login(membership.user)
    return membership


def test_bulk_custom_data_leaves_superseded_and_revoked_licenses_alone(client, admin) -> None:  # type: ignore[no-untyped-def]
    field = CustomField.objects.create(organization=admin.organization, name="Site")
    active = _license(admin.organization)
    superseded = _license(admin.organization, License.Status.SUPERSEDED)
    revoked = _license(admin.organization, License.Status.REVOKED)
    response = client.post(
        reverse("custom-values-bulk"),
        {
            "licenses": [str(active.pk), str(superseded.pk), str(revoked.pk)],
            "apply": "1",
            f"cf_{field.pk}": "Plant North",
        },
        follow=True,
    )
    page = html.unescape(response.content.decode())
    assert "Custom data changed on 1 license." in page
    assert "2 selected licenses are superseded or revoked" in page
    assert list(CustomFieldValue.objects.values_list("license_id", flat=True)) == [active.pk]


def test_an_uploaded_row_for_a_license_kept_as_history_is_refused(client, admin) -> None:  # type: ignore[no-untyped-def]
    CustomField.objects.create(organization=admin.organization, name="Site")
    superseded = _license(admin.organization, License.Status.SUPERSEDED)
    revoked = _license(admin.organization, License.Status.REVOKED)
    content = f"key,Site\r\n{superseded.key},X\r\n{revoked.key},Y\r\n".encode()
    upload = SimpleUploadedFile("licenses.csv", content, "text/csv")
    preview = client.post(reverse("custom-values-csv"), {"file": upload}).context["preview"]
    assert not preview.changing
    errors = [row.error for row in preview.refused]
    assert "This license was superseded: it is kept as history" in errors[0]
    # A revoked license has no successor to make the change on.
    assert "This license was revoked" in errors[1] and "replaced it" not in errors[1]


def test_a_revoked_license_is_not_sent_to_a_license_that_replaced_it(client, admin) -> None:  # type: ignore[no-untyped-def]
    revoked = _license(admin.organization, License.Status.REVOKED)
    page = html.unescape(
        client.get(
            reverse("license-registration", kwargs={"pk": revoked.pk}), follow=True
        ).content.decode()
    )
    assert "This license was revoked" in page
    assert "the license that replaced it" not in page


def test_a_superseded_licenses_downloads_page_offers_no_revoked_successor(client, admin) -> None:  # type: ignore[no-untyped-def]
    old = _license(admin.organization, License.Status.SUPERSEDED)
    live = _license(admin.organization, supersedes=old)
    gone = _license(admin.organization, License.Status.REVOKED, supersedes=old)
    response = client.get(reverse("fileconnect-license", args=[old.pk]))
    page = response.content.decode()
    assert reverse("fileconnect-license", args=[live.pk]) in page
    assert reverse("fileconnect-license", args=[gone.pk]) not in page


def test_the_rehost_refusal_states_the_products_limit(monkeypatch, admin) -> None:  # type: ignore[no-untyped-def]
    # After a move customer care allowed beyond the limit, it said "rehosted 4 times, the most
    # the product allows" for a limit of 3.
    from licensing.services import manage

    license = _license(admin.organization)
    product = license.version.product
    product.node_locked, product.rehost_limit = True, 3
    product.save()
    License.objects.filter(pk=license.pk).update(host_id="HOST-A")
    license.refresh_from_db()
    monkeypatch.setattr(manage, "_rehosts_in_last_year", lambda license: 4)
    refusal = manage.rehost_refusal(license, "HOST-B")
    assert refusal is not None
    assert (
        "rehosted 4 times in the last 12 months" in refusal and "allows 3 moves a year" in refusal
    )
