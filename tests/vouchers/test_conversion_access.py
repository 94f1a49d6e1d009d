"""A channel partner's voucher conversion stops when the customer ends the partner's access:
every chunk checks again that its submitter may still obtain keys for the customer."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from licensing.models import License
from portal.models import AuditEvent, Delegation, Membership
from portal.models import OutboundEmail as Email
from portal.policy import Action, Scope, may_go_on
from portal.requestcontext import acting_under
from portal.services import delegation_revoke, delegation_update
from tests.conftest import postgres_only
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import DelegationFactory, MembershipFactory, PartnerFactory
from tests.vouchers.factories import vouchers
from vouchers import services, tasks
from vouchers.models import Voucher, VoucherConversion
from vouchers.selectors import Reason
from vouchers.services import voucher_conversion_create, vouchers_convert


@pytest.fixture
def customer_admin() -> Membership:
    return MembershipFactory(role=Membership.Role.ADMIN)


@pytest.fixture
def partner_user() -> Membership:
    return MembershipFactory(role=Membership.Role.MEMBER, organization=PartnerFactory())


@pytest.fixture
def delegation(customer_admin: Membership, partner_user: Membership) -> Delegation:
    return DelegationFactory(
        customer=customer_admin.organization,
        partner=partner_user.organization,
        scopes=[Scope.VIEW_LICENSES, Scope.OBTAIN_KEYS],
    )


def _submitted(delegation: Delegation, partner_user: Membership, count: int) -> VoucherConversion:
    """A conversion the partner confirmed for the customer, of `count` separate licenses, of
    which the first chunk (2 licenses) is converted."""
    codes = [v.code for v in vouchers(count)]
    with acting_under(delegation):
        conversion, _created = voucher_conversion_create(
            codes=codes,
            organization=delegation.customer,
            registration=REGISTRATION,
            acting_user=partner_user.user,
            combine=False,
        )
    services._conversion_step(conversion.pk)  # the plan
    services._conversion_step(conversion.pk)  # the first chunk
    assert License.objects.count() == 2
    return conversion


@pytest.mark.django_db
def test_a_revoked_delegation_stops_the_conversion_before_its_next_chunk(
    customer_admin, partner_user, delegation, monkeypatch, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "CHUNK_LICENSES", 2)
    conversion = _submitted(delegation, partner_user, 5)
    delegation_revoke(delegation=delegation, actor=customer_admin.user)

    assert tasks.convert_vouchers.delay(str(conversion.pk)).get() == "failed"

    assert License.objects.count() == 2  # nothing issued after the revocation
    conversion.refresh_from_db()
    assert conversion.status == VoucherConversion.Status.FAILED
    assert conversion.stopped == {"reason": "access_ended", "by": delegation.partner.name}
    assert [r["reason"] for r in conversion.refused] == [Reason.ACCESS_ENDED] * 3
    left = Voucher.objects.filter(status=Voucher.Status.OPEN)
    assert left.count() == 3 and not left.filter(license__isnull=False).exists()
    event = AuditEvent.objects.get(action="vouchers.conversion_failed")
    assert (event.actor, event.organization, event.acting_for) == (
        partner_user.user,
        delegation.partner,
        delegation.customer,
    )
    assert event.details["reason"] == "access_ended" and event.details["licenses"] == 2
    # The two licenses issued before go to the customer, not to the partner it revoked.
    to = {a for email in Email.objects.filter(template="vouchers_converted") for a in email.to}
    assert customer_admin.user.email in to
    assert partner_user.user.email not in to
    # A second run (a redelivered task) leaves it as it is.
    assert tasks.convert_vouchers.delay(str(conversion.pk)).get() == "failed"
    assert AuditEvent.objects.filter(action="vouchers.conversion_failed").count() == 1

    # The vouchers not converted are the customer's to convert.
    result = vouchers_convert(
        codes=[v.code for v in left],
        organization=customer_admin.organization,
        registration=REGISTRATION,
        acting_user=customer_admin.user,
    )
    assert result.conversion.status == VoucherConversion.Status.DONE
    assert len(result.converted_codes) == 3
    assert License.objects.count() == 3


@pytest.mark.django_db
def test_removing_the_obtain_keys_scope_stops_it_and_the_partner_sees_why(
    client: Client, customer_admin, partner_user, delegation, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "CHUNK_LICENSES", 2)
    conversion = _submitted(delegation, partner_user, 4)
    delegation_update(
        delegation=delegation,
        scopes=[Scope.VIEW_LICENSES],
        ends_on=None,
        actor=customer_admin.user,
    )
    tasks.convert_vouchers.delay(str(conversion.pk))

    assert License.objects.count() == 2
    assert Voucher.objects.filter(status=Voucher.Status.OPEN).count() == 2
    # The partner may still view the customer's licenses: its conversion's page says why it
    # stopped.
    client.force_login(partner_user.user)
    client.post(reverse("partner-act", args=[delegation.pk]))
    page = client.get(reverse("voucher-conversion", args=[conversion.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="conversion-access-ended"' in body
    assert "may no longer obtain keys for" in body
    assert "it can still be converted" in body


@pytest.mark.django_db
def test_a_member_removed_midway_stops_their_conversion(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "CHUNK_LICENSES", 2)
    member = MembershipFactory(role=Membership.Role.MEMBER)
    conversion, _ = voucher_conversion_create(
        codes=[v.code for v in vouchers(4)],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        combine=False,
    )
    services._conversion_step(conversion.pk)
    services._conversion_step(conversion.pk)
    member.delete()
    tasks.convert_vouchers.delay(str(conversion.pk))
    conversion.refresh_from_db()
    assert conversion.stopped["reason"] == "access_ended"
    assert License.objects.count() == 2


@pytest.mark.django_db
def test_a_conversion_with_no_submitter_is_not_stopped() -> None:
    member = MembershipFactory()
    result = vouchers_convert(
        codes=[v.code for v in vouchers(2)],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=None,
    )
    assert result.conversion.status == VoucherConversion.Status.DONE


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@postgres_only()
def test_a_revocation_waits_for_the_chunk_in_progress(
    customer_admin, partner_user, delegation
) -> None:  # type: ignore[no-untyped-def]
    # The chunk checked access and is issuing licenses: a revocation committed now would leave
    # them issued after it. The check's FOR SHARE lock makes the revocation wait for the
    # chunk's commit; every later chunk sees it.
    assert connection.vendor == "postgresql"
    checked = threading.Event()
    order: list[str] = []

    def chunk() -> Any:
        try:
            with transaction.atomic():
                allowed = may_go_on(
                    actor=partner_user.user,
                    organization=delegation.customer,
                    delegation_id=delegation.pk,
                    action=Action.OBTAIN_KEYS,
                )
                checked.set()
                time.sleep(1.0)  # issuing
                order.append("chunk committed")
            return allowed
        finally:
            checked.set()
            connection.close()

    def revoke() -> None:
        try:
            checked.wait(timeout=30)
            delegation_revoke(delegation=delegation, actor=customer_admin.user)
            order.append("revoked")
        finally:
            connection.close()

    results: dict[str, Any] = {}
    threads = [
        threading.Thread(target=lambda: results.setdefault("chunk", chunk())),
        threading.Thread(target=revoke),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a job hung (deadlock?)"
    assert results["chunk"] is True
    assert order == ["chunk committed", "revoked"]
    assert not may_go_on(
        actor=partner_user.user,
        organization=delegation.customer,
        delegation_id=delegation.pk,
        action=Action.OBTAIN_KEYS,
    )
