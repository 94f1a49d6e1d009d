"""Real Celery workers against a Redis of their own: a Redis restart under a running task, and
a worker killed with kill -9 in the middle of a voucher conversion.

Both start `celery -A portal worker` as a subprocess with REDIS_URL pointing at a redis-server
the test started on a free port and DATABASE_URL at the test database, as production runs it.
With celery 5.7.0 / kombu 5.7.0 the first test fails: the worker exits with "Unrecoverable
error: AttributeError" (kombu's restore_unacked on a connection celery already closed).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from licensing.models import License
from tests.conftest import postgres_only
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import MembershipFactory
from tests.processes import (
    RedisServer,
    beat,
    portal_env,
    redis_server_available,
    wait_until,
    worker,
)
from tests.vouchers.factories import vouchers
from vouchers.models import Voucher, VoucherConversion
from vouchers.services import voucher_conversion_create

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    postgres_only(),
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not redis_server_available(), reason="needs redis-server (apt-get install redis-server)"
    ),
]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def _conversion(count: int) -> VoucherConversion:
    member = MembershipFactory()
    conversion, _created = voucher_conversion_create(
        codes=[v.code for v in vouchers(count, quantity_per_voucher=1)],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        combine=False,  # one license per voucher: a conversion that takes a while
    )
    return conversion


def _send(broker_url: str, conversion: VoucherConversion) -> None:
    """Queues the conversion as the web process would, from a client app of its own that does not
    become Celery's current app (shared tasks would follow it to this test's Redis)."""
    with Celery(broker=broker_url, set_as_current=False) as client:
        client.send_task("vouchers.tasks.convert_vouchers", args=[str(conversion.pk)])


def _state(conversion: VoucherConversion) -> VoucherConversion:
    conversion.refresh_from_db()
    return conversion


def test_worker_finishes_the_work_when_redis_restarts_under_a_running_task(
    redis_server: RedisServer, tmp_path: Path, signing_key_path: Path
) -> None:
    env = portal_env(redis_url=redis_server.url(), var_dir=tmp_path, signing_key=signing_key_path)
    first = _conversion(1500)
    process = worker(env, tmp_path / "worker.log", "restart")
    try:
        assert wait_until(lambda: "ready" in process.output(), timeout=60), process.output()
        _send(redis_server.url(), first)
        assert wait_until(lambda: _state(first).processed > 0, timeout=60), process.output()
        assert not _state(first).is_finished  # the task is running: now Redis goes away
        redis_server.restart(down_for=2)

        assert wait_until(lambda: _state(first).is_finished, timeout=120), process.output()
        assert process.alive(), process.output()
        # Still consuming: a conversion queued after the restart is done too.
        second = _conversion(3)
        _send(redis_server.url(), second)
        assert wait_until(lambda: _state(second).is_finished, timeout=60), process.output()
    finally:
        process.stop()
    log = process.output()
    assert "Unrecoverable error" not in log, log
    assert "Connection to broker lost" in log  # the restart did reach the worker
    assert _state(first).status == VoucherConversion.Status.DONE, first.error
    assert _state(second).status == VoucherConversion.Status.DONE, second.error
    assert License.objects.count() == 1503  # a redelivered task never issues twice
    assert not Voucher.objects.filter(status=Voucher.Status.OPEN).exists()


def test_a_conversion_killed_with_its_worker_resumes_within_seconds_here(
    redis_server: RedisServer, tmp_path: Path, signing_key_path: Path
) -> None:
    """kill -9 mid-conversion: the resume job re-queues it once silent for PORTAL_STALLED_AFTER.

    Shortened here (stalled after 3 s, checked every second); bench/bench_worker_recovery.py
    measures the default settings (about 60 to 90 s).
    """
    env = portal_env(
        redis_url=redis_server.url(),
        var_dir=tmp_path,
        signing_key=signing_key_path,
        PORTAL_STALLED_AFTER="3",
        PORTAL_RESUME_EVERY="1",
    )
    count = 1500
    conversion = _conversion(count)
    doomed = worker(env, tmp_path / "doomed.log", "doomed")
    assert wait_until(lambda: "ready" in doomed.output(), timeout=60), doomed.output()
    _send(redis_server.url(), conversion)
    assert wait_until(lambda: _state(conversion).processed > 0, timeout=60), doomed.output()
    doomed.kill9()
    killed_at = time.monotonic()
    done_when_killed = _state(conversion).processed
    assert done_when_killed < count

    survivor = worker(env, tmp_path / "survivor.log", "survivor")
    scheduler = beat(env, tmp_path / "beat.log", tmp_path / "beat-schedule")
    try:
        finished = wait_until(lambda: _state(conversion).is_finished, timeout=90, interval=0.25)
        recovered_in = time.monotonic() - killed_at
    finally:
        scheduler.stop()
        survivor.stop()
    assert finished, survivor.output() + scheduler.output()
    assert _state(conversion).status == VoucherConversion.Status.DONE, conversion.error
    assert recovered_in < 45, recovered_in
    # Nothing issued twice, nothing lost: the killed chunk rolled back and was redone.
    assert License.objects.count() == count
    assert _state(conversion).converted == count
    assert not Voucher.objects.filter(status=Voucher.Status.OPEN).exists()
