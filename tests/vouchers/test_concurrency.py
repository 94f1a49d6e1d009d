"""Concurrent conversions on PostgreSQL: a voucher converts exactly once, whoever asks.

The claim locks the vouchers in id order and sets status and license in one conditional UPDATE
whose row count is checked, in the transaction that issues the license. A request that loses
the race waits for the winner's commit, then sees the voucher taken and says so.
"""

from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from licensing.models import License
from tests.concurrency import run_concurrently
from tests.conftest import postgres_only
from tests.licensing.factories import REGISTRATION, ProductVersionFactory
from tests.portal.factories import MembershipFactory, OrganizationFactory
from tests.vouchers.factories import VoucherFactory, vouchers
from vouchers.models import Voucher, VoucherConversion
from vouchers.selectors import Reason, conversion_licenses
from vouchers.services import voucher_batch_void, vouchers_convert
from vouchers.wizard import SESSION_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, postgres_only()]

REQUESTS = 100
# All requests start together; they reach the database through a pool of this many connections,
# as behind a web tier. PostgreSQL's default limit is 100 connections, shared with other runs.
POOL = int(os.environ.get("VOUCHER_RACE_CONNECTIONS", "40"))


def confirming_client(membership, code: str) -> tuple[Client, str]:  # type: ignore[no-untyped-def]
    """A browser session that has walked steps 1-3 for `code` and is about to confirm."""
    client = Client()
    client.force_login(membership.user)
    token = str(uuid.uuid4())
    session = client.session
    session[SESSION_KEY] = {
        "organization": membership.organization_id,
        "entries": [code],
        "unchecked": [],
        "minutes_left": 0,
        "token": token,
        "previewed": True,
        "combine": True,
        "registration": dict(REGISTRATION),
    }
    session.save()
    return client, token


def test_one_voucher_confirmed_by_100_requests_from_two_organizations() -> None:
    assert connection.vendor == "postgresql"
    voucher = VoucherFactory()
    first, second = OrganizationFactory(), OrganizationFactory()
    members = [
        MembershipFactory(organization=first if i % 2 else second, user__password=None)
        for i in range(REQUESTS)
    ]
    clients = [confirming_client(m, voucher.code) for m in members]

    def confirm(client: Client, token: str) -> Any:
        return client.post(reverse("voucher-center-confirm"), {"token": token})

    responses = run_concurrently([lambda c=c, t=t: confirm(c, t) for c, t in clients], pool=POOL)
    errors = [r for r in responses if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert all(
        r.status_code == 302 and "/vouchers/conversions/" in r["Location"] for r in responses
    )

    license = License.objects.get()  # exactly one, whoever won
    voucher.refresh_from_db()
    assert voucher.status == Voucher.Status.REDEEMED and voucher.license == license
    assert voucher.redeemed_by == license.owner

    conversions = list(VoucherConversion.objects.select_related("organization"))
    assert len(conversions) == REQUESTS
    assert all(c.status == VoucherConversion.Status.DONE for c in conversions)
    outcomes: Counter[str] = Counter()
    for conversion in conversions:
        issued = conversion_licenses(conversion)
        if issued:
            outcomes["converted"] += 1
            assert issued[0].key == license.key
            continue
        ((refusal),) = conversion.refused
        assert refusal["code"] == voucher.code
        winner = conversion.organization_id == license.owner_id
        assert refusal["reason"] == (Reason.REDEEMED_BY_YOU if winner else Reason.REDEEMED)
        outcomes["taken"] += 1
    assert outcomes == Counter({"converted": 1, "taken": REQUESTS - 1})


def test_overlapping_bulk_submissions_never_convert_a_code_twice() -> None:
    version = ProductVersionFactory()
    pool = vouchers(240, version=version, quantity_per_voucher=1)
    codes = [v.code for v in pool]
    organizations = [OrganizationFactory(), OrganizationFactory()]
    members = [MembershipFactory(organization=org, user__password=None) for org in organizations]
    rng = random.Random(7)
    submissions = []
    for index in range(6):
        window = codes[index * 30 : index * 30 + 120]  # each code is in two to four windows
        order = window[::-1] if index % 2 else rng.sample(window, len(window))
        submissions.append((members[index % 2], order, index % 3 != 0))

    def convert(member, order, combine):  # type: ignore[no-untyped-def]
        return vouchers_convert(
            codes=order,
            organization=member.organization,
            registration=REGISTRATION,
            acting_user=member.user,
            combine=combine,
        )

    results = run_concurrently([lambda s=s: convert(*s) for s in submissions], pool=6)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors

    converted: list[str] = []
    for result, (_member, order, _combine) in zip(results, submissions, strict=True):
        mine = result.converted_codes
        refused = {item["code"]: item["reason"] for item in result.refused}
        assert sorted(mine + list(refused)) == sorted(order)  # every code answered, once
        assert set(refused.values()) <= {Reason.REDEEMED, Reason.REDEEMED_BY_YOU}
        converted.extend(mine)
    assert len(converted) == len(set(converted))  # no code converted by two submissions
    windows = {code for _m, order, _c in submissions for code in order}
    assert set(converted) == windows
    assert Voucher.objects.filter(status=Voucher.Status.REDEEMED).count() == len(windows)
    assert sum(License.objects.values_list("quantity", flat=True)) == len(windows)
    assert not Voucher.objects.filter(status=Voucher.Status.REDEEMED, license=None).exists()


def test_voiding_a_batch_while_it_converts() -> None:
    batch_vouchers = vouchers(150, quantity_per_voucher=1)
    member = MembershipFactory(user__password=None)

    def convert() -> Any:
        return vouchers_convert(
            codes=[v.code for v in batch_vouchers],
            organization=member.organization,
            registration=REGISTRATION,
            acting_user=member.user,
            combine=False,
        )

    def void() -> int:
        return voucher_batch_void(batch=batch_vouchers[0].batch, acting_user=None)

    result, voided = run_concurrently([convert, void], pool=2)
    assert not isinstance(result, BaseException) and not isinstance(voided, BaseException)
    statuses = Counter(Voucher.objects.values_list("status", flat=True))
    # Either order is fine; a voucher is never both converted and void.
    assert statuses["redeemed"] + statuses["void"] == 150 and statuses["open"] == 0
    assert statuses["redeemed"] == License.objects.count() == len(result.licenses)
    assert statuses["void"] == voided


def test_the_same_codes_submitted_twice_at_once_convert_once_each_to_its_own_license() -> None:
    # One license per voucher, several chunks: the claim pairs every voucher with its own
    # license in one UPDATE per chunk, and only one of the two submissions can make it.
    pool = vouchers(250, quantity_per_voucher=1)
    codes = [v.code for v in pool]
    members = [MembershipFactory(user__password=None) for _ in range(2)]

    def convert(member, order):  # type: ignore[no-untyped-def]
        return vouchers_convert(
            codes=order,
            organization=member.organization,
            registration=REGISTRATION,
            acting_user=member.user,
            combine=False,
        )

    results = run_concurrently(
        [lambda: convert(members[0], codes), lambda: convert(members[1], codes[::-1])], pool=2
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    converted = [code for result in results for code in result.converted_codes]
    assert sorted(converted) == sorted(codes)  # every code once, by one submission or the other
    assert License.objects.count() == len(codes)
    for result in results:
        owner = result.conversion.organization_id
        issued = {lic.pk for lic in conversion_licenses(result.conversion)}
        for voucher in Voucher.objects.filter(redeemed_by_id=owner).select_related("license"):
            assert voucher.license is not None and voucher.license.pk in issued
            assert voucher.license.source_ref == voucher.code  # its own license, not a neighbour's
