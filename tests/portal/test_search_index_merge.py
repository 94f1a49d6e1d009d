"""The search indexes' pending lists are merged by the beat and after bulk writes."""

from __future__ import annotations

import pytest
from django.conf import settings

from portal.services import gin_pending_lists_merge
from portal.tasks import merge_search_indexes
from tests.conftest import postgres_only
from tests.licensing.factories import LicenseFactory, ProductVersionFactory
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import convert_separately, vouchers

pytestmark = pytest.mark.django_db


@postgres_only()
def test_new_licenses_wait_in_pending_lists_until_merged() -> None:
    gin_pending_lists_merge()  # what earlier tests left
    assert gin_pending_lists_merge() == 0
    LicenseFactory.create_batch(5)
    assert gin_pending_lists_merge() > 0  # pages moved from the pending lists into the indexes
    assert merge_search_indexes.apply().get() == 0  # nothing left


def test_merging_is_a_no_op_off_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection

    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert gin_pending_lists_merge() == 0


def test_the_beat_merges_every_half_minute() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["merge-search-indexes"]
    assert entry["task"] == "portal.tasks.merge_search_indexes"
    assert entry["schedule"] == 30.0


def test_a_voucher_conversion_queues_a_merge_when_it_commits(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from vouchers import services

    queued: list[str] = []
    monkeypatch.setattr(services, "enqueue", lambda task, *args: queued.append(task.name))
    membership = MembershipFactory()
    batch = vouchers(3, version=ProductVersionFactory())
    with django_capture_on_commit_callbacks(execute=True):
        convert_separately(membership, [v.code for v in batch])
    assert queued == ["portal.tasks.merge_search_indexes"]


@postgres_only()
def test_a_role_that_does_not_own_the_indexes_merges_nothing_and_fails_nothing() -> None:
    from django.db import connection

    LicenseFactory.create_batch(2)
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE portal_test_reader NOLOGIN")
        cursor.execute("GRANT USAGE ON SCHEMA public TO portal_test_reader")
        cursor.execute("SET LOCAL ROLE portal_test_reader")
        try:
            assert gin_pending_lists_merge() == 0
        finally:
            cursor.execute("RESET ROLE")
    assert gin_pending_lists_merge() > 0  # the owner's run still merges what waits
