"""An invitation email says until when its link works: a re-sent invitation keeps its first
date, so "valid for 14 days" was wrong for every re-send."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from enterprise_flex.models import EFContractUser
from enterprise_flex.services import invitation_create as ef_invitation_create
from portal.models import Invitation
from portal.services import invitation_create
from tests.enterprise_flex.factories import EFContractFactory, contract_member
from tests.portal.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _body(callbacks: Any, action: Any) -> tuple[str, str]:
    mail.outbox.clear()
    with callbacks(execute=True):
        action()
    message = mail.outbox[-1]
    return message.body, message.alternatives[0][0]


def test_a_re_sent_invitation_says_when_its_link_expires(
    django_capture_on_commit_callbacks: Any,
) -> None:
    admin = MembershipFactory()

    def invite() -> Invitation:
        return invitation_create(
            organization=admin.organization,
            email="new@customer.example",
            role="member",
            invited_by=admin.user,
        )

    first = invite()
    Invitation.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=13))
    text, html = _body(django_capture_on_commit_callbacks, invite)
    assert Invitation.objects.get(pk=first.pk).revoked_at is None  # the same invitation, re-sent
    expires = timezone.localdate() + timedelta(days=1)
    assert "valid for 14 days" not in text
    assert f"valid until {expires.isoformat()}" in text and expires.isoformat() in html


def test_a_re_sent_contract_invitation_says_when_its_link_expires(
    django_capture_on_commit_callbacks: Any,
) -> None:
    contract = EFContractFactory()
    super_user = contract_member(contract, EFContractUser.Level.SUPER)

    def invite() -> Any:
        return ef_invitation_create(
            contract=contract, email="new@customer.example", level="contract", actor=super_user
        )

    first = invite()
    type(first).objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(days=10))
    text, html = _body(django_capture_on_commit_callbacks, invite)
    expires = timezone.localdate() + timedelta(days=4)
    assert "valid for 14 days" not in text
    assert f"valid until {expires.isoformat()}" in text and expires.isoformat() in html
