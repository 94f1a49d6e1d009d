"""An invitation is worth what its sender may still do: one sent by an administrator stops
working when they are removed or demoted. The Members page says who sent each invitation and
until when it is valid, and offers to send a lapsed one again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from portal.models import AuditEvent, Invitation, Membership
from portal.services import (
    PortalError,
    invitation_accept,
    invitation_create,
    membership_update,
    memberships_staff_changed,
)
from tests.portal.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _bob_invites_eve() -> tuple[Membership, Membership, Invitation]:
    alice = MembershipFactory()
    bob = MembershipFactory(organization=alice.organization, role=Membership.Role.ADMIN)
    invitation = invitation_create(
        organization=alice.organization,
        email="eve@evil.example",
        role=Membership.Role.ADMIN,
        invited_by=bob.user,
    )
    return alice, bob, invitation


def _withdrawn(invitation: Invitation, reason: str) -> None:
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None and invitation.accepted_at is None
    event = AuditEvent.objects.get(action="invitation.revoked", object_id=str(invitation.pk))
    assert event.details["reason"] == reason
    assert event.details["email"] == "eve@evil.example"


def test_removing_an_administrator_withdraws_their_invitations(client: Client) -> None:
    alice, bob, invitation = _bob_invites_eve()
    membership_update(membership=bob, actor=alice.user, remove=True)
    _withdrawn(invitation, "inviter_removed")
    eve = UserFactory(email="eve@evil.example")
    client.force_login(eve)
    assert client.post(reverse("invitation", args=[invitation.token])).status_code == 404
    assert not Membership.objects.filter(user=eve).exists()


def test_an_administrator_demoting_themselves_withdraws_their_invitations() -> None:
    _alice, bob, invitation = _bob_invites_eve()
    membership_update(membership=bob, actor=bob.user, role=Membership.Role.MEMBER)
    _withdrawn(invitation, "inviter_demoted")


def test_a_role_change_that_keeps_the_administrator_keeps_their_invitations() -> None:
    alice, _bob, invitation = _bob_invites_eve()
    member = MembershipFactory(organization=alice.organization, role=Membership.Role.MEMBER)
    membership_update(membership=member, actor=alice.user, role=Membership.Role.ADMIN)
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


def test_staff_demoting_an_administrator_withdraws_their_invitations() -> None:
    alice, bob, invitation = _bob_invites_eve()
    staff = UserFactory(is_staff=True, is_superuser=True)
    Membership.objects.filter(pk=bob.pk).update(role=Membership.Role.MEMBER)
    bob.refresh_from_db()
    memberships_staff_changed(
        organization=alice.organization,
        actor=staff,
        role_changes=[(bob, Membership.Role.ADMIN)],
    )
    _withdrawn(invitation, "staff")


def test_accepting_is_refused_when_the_inviter_is_no_longer_an_administrator() -> None:
    # A change no service saw (a row edited in the database): accepting checks again.
    _alice, bob, invitation = _bob_invites_eve()
    Membership.objects.filter(pk=bob.pk).update(role=Membership.Role.MEMBER)
    eve = UserFactory(email="eve@evil.example")
    with pytest.raises(PortalError, match="can no longer invite people"):
        invitation_accept(invitation=invitation, user=eve)
    assert not Membership.objects.filter(user=eve).exists()


def test_accepting_from_the_page_says_so(client: Client) -> None:
    _alice, bob, invitation = _bob_invites_eve()
    bob.delete()
    eve = UserFactory(email="eve@evil.example")
    client.force_login(eve)
    response = client.post(reverse("invitation", args=[invitation.token]), follow=True)
    assert "can no longer invite people" in response.content.decode()
    assert not Membership.objects.filter(user=eve).exists()


def test_members_page_says_who_sent_each_invitation(client: Client) -> None:
    alice, bob, _invitation = _bob_invites_eve()
    client.force_login(alice.user)
    page = client.get(reverse("members")).content.decode()
    assert f"Invited by {bob.user.email}" in page


def test_members_page_marks_lapsed_invitations_and_sends_them_again(client: Client) -> None:
    alice = MembershipFactory()
    lapsed = invitation_create(
        organization=alice.organization,
        email="late@acme.example",
        role=Membership.Role.ADMIN,
        invited_by=alice.user,
    )
    Invitation.objects.filter(pk=lapsed.pk).update(
        created_at=lapsed.created_at - timedelta(days=15)
    )
    pending = invitation_create(
        organization=alice.organization,
        email="soon@acme.example",
        role=Membership.Role.MEMBER,
        invited_by=alice.user,
    )
    client.force_login(alice.user)
    page = client.get(reverse("members")).content.decode()
    lapsed.refresh_from_db()
    expired_on = date_format(timezone.localtime(lapsed.expires_at), "SHORT_DATE_FORMAT")
    valid_until = date_format(timezone.localtime(pending.expires_at), "SHORT_DATE_FORMAT")
    assert f"Expired on {expired_on}" in page
    assert f"Valid until {valid_until}" in page
    assert page.count("Send again") == 1

    response = client.post(
        reverse("members"), {"email": "late@acme.example", "role": Membership.Role.ADMIN}
    )
    assert response.status_code == 302
    lapsed.refresh_from_db()
    assert lapsed.revoked_at is not None
    fresh = Invitation.objects.get(email="late@acme.example", revoked_at__isnull=True)
    assert fresh.role == Membership.Role.ADMIN
    assert fresh.is_open(now=timezone.now())
    assert "Send again" not in client.get(reverse("members")).content.decode()
