"""Invitations and shares email people on a user's say-so: limited per user and per
organization, and nothing a user typed reaches an email's subject."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core import mail
from django.db import connections
from django.test import Client
from django.urls import reverse

from portal.models import Invitation, OutboundEmail
from portal.services import PortalError, invitation_create
from tests.conftest import postgres_only
from tests.licensing.factories import LicenseFactory
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db

EVIL = "URGENT: verify your account at http://evil.example/login"
USER_LIMIT = "You have sent many invitations and shares in the last hour"
ORG_LIMIT = "Your organization has sent many invitations and shares in the last hour"


def _messages(response: Any) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def _invite(client: Client, email: str) -> Any:
    return client.post(reverse("members"), {"email": email, "role": "member"}, follow=True)


def _share(client: Client, license: Any, email: str) -> Any:
    return client.post(
        reverse("license-share"),
        {"licenses": [license.pk], "email": email, "access": "read"},
        follow=True,
    )


def test_thirty_invitations_in_a_second_stop_at_the_users_limit(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_INVITES_PER_USER_PER_HOUR = 20
    admin = MembershipFactory(organization__name=EVIL)
    client.force_login(admin.user)
    responses = [_invite(client, f"victim{n}@example.com") for n in range(30)]
    assert Invitation.objects.count() == 20
    assert OutboundEmail.objects.count() == 20
    assert USER_LIMIT in _messages(responses[20])
    assert all(response.status_code == 200 for response in responses)


def test_re_sending_one_invitation_counts_too(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_INVITES_PER_USER_PER_HOUR = 3
    admin = MembershipFactory()
    client.force_login(admin.user)
    for _ in range(4):
        response = _invite(client, "victim@example.com")
    assert USER_LIMIT in _messages(response)
    assert OutboundEmail.objects.count() == 3


def test_shares_count_one_per_recipient_with_invitations(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_INVITES_PER_USER_PER_HOUR = 3
    admin = MembershipFactory()
    client.force_login(admin.user)
    licenses = [LicenseFactory(owner=admin.organization) for _ in range(3)]
    _invite(client, "one@example.com")
    for license in licenses:  # three licenses, one recipient: one email, one count
        _share(client, license, "two@example.com")
    _share(client, licenses[0], "three@example.com")
    refused = _share(client, licenses[0], "four@example.com")
    assert USER_LIMIT in _messages(refused)
    assert not licenses[0].shares.filter(email="four@example.com").exists()


def test_an_organizations_administrators_share_one_limit(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_INVITES_PER_ORG_PER_HOUR = 4
    first = MembershipFactory()
    second = MembershipFactory(organization=first.organization)
    for admin, addresses in [(first, range(3)), (second, range(3, 6))]:
        client.force_login(admin.user)
        for n in addresses:
            response = _invite(client, f"victim{n}@example.com")
    assert ORG_LIMIT in _messages(response)
    assert Invitation.objects.count() == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only()
def test_concurrent_invitations_do_not_slip_past_the_limit(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PORTAL_INVITES_PER_USER_PER_HOUR = 5
    admin = MembershipFactory()
    barrier = threading.Barrier(12)
    refused: list[str] = []

    def invite(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            invitation_create(
                organization=admin.organization,
                email=f"victim{n}@example.com",
                role="member",
                invited_by=admin.user,
            )
        except PortalError as exc:
            refused.append(str(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=invite, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Invitation.objects.count() == 5 and len(refused) == 7


def test_user_entered_text_stays_out_of_subjects(
    client: Client, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    admin = MembershipFactory(organization__name=EVIL)
    admin.user.full_name = EVIL
    admin.user.save()
    client.force_login(admin.user)
    node_locked = LicenseFactory(owner=admin.organization, version__product__node_locked=True)
    with django_capture_on_commit_callbacks(execute=True):
        _invite(client, "victim@example.com")
        _share(client, LicenseFactory(owner=admin.organization), "other@example.com")
        client.post(
            reverse("license-rehost", kwargs={"pk": node_locked.pk}),
            {"host_id": EVIL, "confirm": "1"},
        )
    subjects = [email.subject for email in mail.outbox]
    # The rehost's email goes in two bodies: with the license page's link for the member, without
    # it for the technical contact.
    assert len(subjects) == 4
    for subject in subjects:
        assert "evil" not in subject.lower() and "URGENT" not in subject, subject
    # The body still says who invited, quoted as data the recipient can judge.
    assert EVIL in mail.outbox[0].body
