"""Two administrators changing members at once on PostgreSQL: one who is demoted or removed
meanwhile can no longer act, whatever its request had checked before."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connections

from portal import services
from portal.models import Membership
from portal.services import PortalError, membership_update
from tests.conftest import postgres_only
from tests.portal.factories import MembershipFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, postgres_only()]


@pytest.mark.parametrize("a_does", [{"role": Membership.Role.MEMBER}, {"remove": True}])
def test_an_administrator_demoted_meanwhile_cannot_demote_another(
    monkeypatch: pytest.MonkeyPatch, a_does: dict[str, Any]
) -> None:
    a = MembershipFactory(role=Membership.Role.ADMIN)
    b = MembershipFactory(organization=a.organization, role=Membership.Role.ADMIN)
    c = MembershipFactory(organization=a.organization, role=Membership.Role.ADMIN)
    b_checked, a_done = threading.Event(), threading.Event()
    check = services._require_admin

    def require_admin(actor: Any, organization: Any) -> None:
        check(actor, organization)
        if actor.pk == b.user_id:  # B passed the check; A demotes (or removes) B now
            b_checked.set()
            assert a_done.wait(timeout=30)

    monkeypatch.setattr(services, "_require_admin", require_admin)
    outcome: dict[str, Any] = {}

    def b_demotes_c() -> None:
        try:
            membership_update(membership=c, actor=b.user, role=Membership.Role.MEMBER)
            outcome["b"] = "done"
        except PortalError as exc:
            outcome["b"] = str(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=b_demotes_c)
    thread.start()
    assert b_checked.wait(timeout=30)
    membership_update(membership=b, actor=a.user, **a_does)
    a_done.set()
    thread.join(timeout=60)
    assert outcome["b"] == "Only the organization's administrators can do this."
    c.refresh_from_db()
    assert c.role == Membership.Role.ADMIN
