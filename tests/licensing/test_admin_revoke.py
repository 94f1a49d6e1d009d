"""Customer care in admin: revoke a license, allow one more rehost past the product's limit.

Licenses were view-only in admin: `revoked` was a status nothing set, so a refunded or
fraudulent key could not be withdrawn, and a customer at the rehost limit could only be helped
by raising the limit of the product for every customer.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse

from licensing.models import License
from licensing.services import (
    LicensingError,
    license_email_again,
    license_rehost,
    license_rehost_grant,
    licenses_revoke,
    rehost_refusal,
    rehosts_left,
    renewal_refusal,
)
from portal.models import AuditEvent, Membership, User
from tests.licensing.factories import LicenseFactory, ProductFactory, ProductVersionFactory
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:licensing_license_changelist"


def _staff(*codenames: str) -> User:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


def _offered(client) -> list[str]:  # type: ignore[no-untyped-def]
    form = client.get(reverse(CHANGELIST)).context["action_form"]
    return [name for name, _label in form.fields["action"].choices if name] if form else []


def _messages(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(m) for m in response.context["messages"])


@pytest.fixture
def owner_admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN, user__language="pt-br")


def test_view_only_staff_can_neither_revoke_nor_grant(client, owner_admin) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=owner_admin.organization)
    client.force_login(_staff("view_license"))
    assert not {"revoke_licenses", "grant_rehost"} & set(_offered(client))
    for action in ("revoke_licenses", "grant_rehost"):
        client.post(
            reverse(CHANGELIST),
            {"action": action, "_selected_action": [license.pk], "apply": "1", "reason": "x"},
        )
    license.refresh_from_db()
    assert (license.status, license.rehosts_granted) == (License.Status.ACTIVE, 0)
    assert not AuditEvent.objects.exclude(action="license.issued").exists()


def test_revoke_asks_why_then_revokes_audits_and_emails_the_owners_administrators(
    client, owner_admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=owner_admin.organization)
    superseded = LicenseFactory(owner=owner_admin.organization)
    License.objects.filter(pk=superseded.pk).update(status=License.Status.SUPERSEDED)
    staff = _staff("view_license", "change_license")
    client.force_login(staff)
    assert {"revoke_licenses", "grant_rehost"} <= set(_offered(client))
    selection = {"action": "revoke_licenses", "_selected_action": [license.pk, superseded.pk]}
    ask = client.post(reverse(CHANGELIST), selection)
    page = ask.content.decode()
    assert ask.status_code == 200
    assert "1 active license will be revoked" in page
    assert "1 selected license is already superseded or revoked" in page
    assert 'name="reason"' in page and 'name="apply"' in page
    # Confirmed without a reason: asked again, nothing changed.
    again = client.post(reverse(CHANGELIST), {**selection, "apply": "1", "reason": "  "})
    assert again.status_code == 200
    assert "Say why the licenses are revoked" in again.content.decode()
    license.refresh_from_db()
    assert license.status == License.Status.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(
            reverse(CHANGELIST),
            {**selection, "apply": "1", "reason": "Refunded, order 4711"},
            follow=True,
        )
    messages = _messages(done)
    assert "1 license revoked." in messages
    assert f"left as they were: {superseded.key}" in messages
    license.refresh_from_db()
    superseded.refresh_from_db()
    assert license.status == License.Status.REVOKED
    assert superseded.status == License.Status.SUPERSEDED
    event = AuditEvent.objects.get(action="license.revoked")
    assert (event.actor, event.organization, event.object_id) == (
        staff,
        owner_admin.organization,
        str(license.pk),
    )
    assert event.details["reason"] == "Refunded, order 4711"
    (email,) = mail.outbox
    assert email.to == [owner_admin.user.email]
    # In the administrator's language; the reason is customer care's note, not in the email.
    assert "Chave de licença" in email.body and "Abrir esta licença" in email.body
    assert license.key[-5:] in email.body and license.key not in email.body
    assert "4711" not in email.body


def test_a_revoked_license_is_renewed_rehosted_emailed_and_upgraded_no_more(
    client, owner_admin
) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(product=ProductFactory(node_locked=True))
    license = LicenseFactory(owner=owner_admin.organization, version=version, host_id="HOST-A")
    licenses_revoke(license_ids=[license.pk], reason="Fraud", actor=UserFactory(is_staff=True))
    license.refresh_from_db()
    assert renewal_refusal(license) == "Only active licenses can be renewed."
    assert rehost_refusal(license, "HOST-B") == "Only active licenses can be rehosted."
    with pytest.raises(LicensingError):
        license_email_again(license=license, actor=owner_admin.user)
    with pytest.raises(LicensingError, match="only active licenses"):
        license_rehost_grant(license=license, reason="Moved", actor=UserFactory(is_staff=True))
    client.force_login(owner_admin.user)
    page = client.get(reverse("license-detail", args=[license.pk]), HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert 'data-testid="license-revoked"' in text
    assert "its key no longer works" in text
    assert "Revoked a license" in text  # the history, without customer care's reason
    assert "Fraud" not in text
    assert reverse("license-renew", args=[license.pk]) not in text
    assert reverse("license-rehost", args=[license.pk]) not in text
    # Revoking it again changes nothing and says so.
    result = licenses_revoke(license_ids=[license.pk], reason="Again", actor=UserFactory())
    assert (result.revoked, [r.pk for r in result.refused]) == ([], [license.pk])
    assert AuditEvent.objects.filter(action="license.revoked").count() == 1


def test_the_service_refuses_a_revocation_without_a_reason(owner_admin) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=owner_admin.organization)
    with pytest.raises(LicensingError, match="Say why"):
        licenses_revoke(license_ids=[license.pk], reason=" \n ", actor=UserFactory())
    license.refresh_from_db()
    assert license.status == License.Status.ACTIVE


def test_one_more_rehost_past_the_limit_for_one_license(client, owner_admin) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(product=ProductFactory(node_locked=True, rehost_limit=1))
    license = LicenseFactory(owner=owner_admin.organization, version=version, host_id="HOST-A")
    other = LicenseFactory(owner=owner_admin.organization, version=version, host_id="HOST-X")
    license = license_rehost(license=license, host_id="HOST-B", actor=owner_admin.user)
    assert "Contact customer care" in (rehost_refusal(license, "HOST-C") or "")
    staff = _staff("view_license", "change_license")
    client.force_login(staff)
    selection = {"action": "grant_rehost", "_selected_action": [license.pk]}
    # Asked first, with the reason, as a revocation is; nothing is granted without one.
    asked = client.post(reverse(CHANGELIST), selection).content.decode()
    assert 'name="reason"' in asked and license.key in asked
    refused = client.post(reverse(CHANGELIST), {**selection, "apply": "1", "reason": " "})
    assert "Say why this license may move once more" in refused.content.decode()
    license.refresh_from_db()
    assert license.rehosts_granted == 0
    reason = "Server failed, ticket 4471"
    response = client.post(
        reverse(CHANGELIST), {**selection, "apply": "1", "reason": reason}, follow=True
    )
    assert "1 license may be rehosted once more" in _messages(response)
    license.refresh_from_db()
    assert license.rehosts_granted == 1 and rehosts_left(license) == 1
    assert rehost_refusal(license, "HOST-C") is None
    event = AuditEvent.objects.get(action="license.rehost_granted")
    assert event.actor == staff and event.object_id == str(license.pk)
    assert event.details["changes"] == {"rehosts_granted": {"from": 0, "to": 1}}
    assert event.details["reason"] == reason
    # The owner reads in the license's history why it may move again.
    client.force_login(owner_admin.user)
    page = client.get(reverse("license-detail", args=[license.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert f"Customer care allowed one more move beyond the product's limit: {reason}" in (
        page.content.decode()
    )
    # The other license of the product, and the product's limit, are as they were.
    assert rehosts_left(other) == 1 and version.product.rehost_limit == 1
    # The grant is spent by the move the limit refused, and the limit holds again after it.
    license = license_rehost(license=license, host_id="HOST-C", actor=owner_admin.user)
    assert license.rehosts_granted == 0
    rehosts = AuditEvent.objects.filter(action="license.rehosted")
    assert [e.details.get("granted") for e in rehosts.order_by("created_at")] == [None, True]
    assert "Contact customer care" in (rehost_refusal(license, "HOST-D") or "")


def test_no_rehost_is_granted_to_a_floating_license(client, owner_admin) -> None:  # type: ignore[no-untyped-def]
    license = LicenseFactory(owner=owner_admin.organization)
    client.force_login(_staff("view_license", "change_license"))
    response = client.post(
        reverse(CHANGELIST),
        {"action": "grant_rehost", "_selected_action": [license.pk]},
        follow=True,
    )
    assert "is not node-locked" in _messages(response)
    license.refresh_from_db()
    assert license.rehosts_granted == 0
    assert not AuditEvent.objects.filter(action="license.rehost_granted").exists()


def test_revoking_nothing_active_asks_nothing(client, owner_admin) -> None:  # type: ignore[no-untyped-def]
    # "0 active licenses will be revoked" came with a reason box and a Revoke button.
    revoked = LicenseFactory(owner=owner_admin.organization)
    License.objects.filter(pk=revoked.pk).update(status=License.Status.REVOKED)
    client.force_login(_staff("view_license", "change_license"))
    selection = {"action": "revoke_licenses", "_selected_action": [revoked.pk]}
    response = client.post(reverse(CHANGELIST), selection, follow=True)
    assert "None of the selected licenses is active: nothing was revoked." in _messages(response)
    assert 'name="reason"' not in response.content.decode()


def test_a_revocation_is_not_emailed_to_a_deactivated_administrator(
    owner_admin, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    # The owner's administrators were read whatever their account's state: a departed or
    # compromised account staff had deactivated (is_active=False) still got "your key was
    # revoked", with the masked key and a link it can no longer open.
    departed = MembershipFactory(
        organization=owner_admin.organization,
        role=Membership.Role.ADMIN,
        user__email="departed@customer.example",
    )
    User.objects.filter(pk=departed.user.pk).update(is_active=False)
    license = LicenseFactory(owner=owner_admin.organization)
    with django_capture_on_commit_callbacks(execute=True):
        licenses_revoke(license_ids=[license.pk], reason="Refunded", actor=_staff())
    assert [address for email in mail.outbox for address in email.to] == [owner_admin.user.email]
    # Only an organization with no active administrator is told nothing.
    User.objects.filter(pk=owner_admin.user.pk).update(is_active=False)
    mail.outbox.clear()
    other = LicenseFactory(owner=owner_admin.organization)
    with django_capture_on_commit_callbacks(execute=True):
        licenses_revoke(license_ids=[other.pk], reason="Refunded", actor=_staff())
    assert mail.outbox == []


def test_the_service_refuses_a_rehost_grant_without_a_reason(owner_admin) -> None:  # type: ignore[no-untyped-def]
    version = ProductVersionFactory(product=ProductFactory(node_locked=True))
    license = LicenseFactory(owner=owner_admin.organization, version=version, host_id="HOST-A")
    with pytest.raises(LicensingError, match="Say why this license may move once more"):
        license_rehost_grant(license=license, reason=" \n ", actor=UserFactory(is_staff=True))
    license.refresh_from_db()
    assert license.rehosts_granted == 0
    assert not AuditEvent.objects.filter(action="license.rehost_granted").exists()
