"""How long a voucher conversion stalls when its worker is killed (kill -9), default settings.

Run against PostgreSQL (DATABASE_URL); it starts its own redis-server, Celery beat and workers:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \
        .venv/bin/python bench/bench_worker_recovery.py

The floor is the same 1,000-code conversion on an undisturbed worker, in the same run. Then a
second one is started, its worker (with its pool) is killed with SIGKILL after the first chunk,
a second worker is started at once (as docker-compose's restart policy or a second replica
would), and the time from the kill to the conversion's end is printed. Beat runs throughout
with the default schedule (resume job every PORTAL_RESUME_EVERY = 30 s, stalled after
PORTAL_STALLED_AFTER = 60 s). It asserts nothing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from celery import Celery  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from licensing.models import Product, ProductVersion  # noqa: E402
from licensing.signing import create_signing_key  # noqa: E402
from portal.models import Membership, Organization, User  # noqa: E402
from tests.processes import RedisServer, beat, portal_env, wait_until, worker  # noqa: E402
from vouchers.models import VoucherConversion  # noqa: E402
from vouchers.services import voucher_batch_create, voucher_conversion_create  # noqa: E402

CODES = 1000
REGISTRATION = {
    "company": "Bench Co", "address": "1 Bench Street", "country": "BR",
    "primary_name": "P", "primary_email": "p@bench.example", "primary_phone": "1",
    "technical_name": "T", "technical_email": "t@bench.example", "technical_phone": "2",
}  # fmt: skip


def _conversion(stamp: str, version: ProductVersion, oem: Organization) -> VoucherConversion:
    user = User.objects.create_user(email=f"bench-r-{stamp}@bench.example", password=None)
    customer = Organization.objects.create(name=f"Bench Customer {stamp}")
    Membership.objects.create(user=user, organization=customer, role="admin")
    batch = voucher_batch_create(oem=oem, version=version, count=CODES)
    conversion, _created = voucher_conversion_create(
        codes=list(batch.vouchers.values_list("code", flat=True)),
        organization=customer,
        registration=REGISTRATION,
        acting_user=user,
        combine=False,  # one license per voucher, as a large OEM order can be
    )
    return conversion


def _state(conversion: VoucherConversion) -> VoucherConversion:
    conversion.refresh_from_db()
    return conversion


def main() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("Run against PostgreSQL: set DATABASE_URL=postgres://…")
    call_command("migrate", verbosity=0)
    stamp = str(time.time_ns())
    product = Product.objects.create(sku=f"BENCH-R-{stamp}", name="Bench Appliance Suite")
    version = ProductVersion.objects.create(product=product, version="1.0")
    oem = Organization.objects.create(name=f"Bench OEM {stamp}", kind=Organization.Kind.PARTNER)

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        key = directory / "key.pem"
        create_signing_key(key)
        redis = RedisServer(directory)
        redis.start()
        env = portal_env(redis_url=redis.url(), var_dir=directory, signing_key=key)
        env["DJANGO_LOG_LEVEL"] = "WARNING"
        scheduler = beat(env, directory / "beat.log", directory / "beat-schedule")
        first = worker(env, directory / "first.log", "first")
        second = None
        try:
            assert wait_until(lambda: "ready" in first.output(), timeout=60), first.output()
            with Celery(broker=redis.url(), set_as_current=False) as client:
                undisturbed = _conversion(f"{stamp}-a", version, oem)
                started = time.monotonic()
                client.send_task("vouchers.tasks.convert_vouchers", args=[str(undisturbed.pk)])
                wait_until(lambda: _state(undisturbed).is_finished, timeout=300, interval=0.05)
                floor = time.monotonic() - started

                killed = _conversion(f"{stamp}-b", version, oem)
                client.send_task("vouchers.tasks.convert_vouchers", args=[str(killed.pk)])
                wait_until(lambda: _state(killed).processed > 0, timeout=120, interval=0.02)
            first.kill9()
            killed_at = time.monotonic()
            processed_at_kill = _state(killed).processed
            second = worker(env, directory / "second.log", "second")
            finished = wait_until(lambda: _state(killed).is_finished, timeout=900, interval=0.5)
            recovery = time.monotonic() - killed_at
        finally:
            for process in (second, first, scheduler):
                if process is not None:
                    process.stop()
            redis.stop()
    print(f"database                             {connection.vendor}")
    print(f"conversion                           {CODES:,} codes, one license each")
    every = settings.CELERY_BEAT_SCHEDULE["vouchers-resume-conversions"]["schedule"]
    print(
        f"settings                             stalled after {settings.PORTAL_STALLED_AFTER} s, "
        f"resume job every {every:.0f} s, visibility timeout {settings.PORTAL_VISIBILITY_TIMEOUT} s"
    )
    print(f"undisturbed conversion (floor)       {floor:.1f} s")
    print(f"killed after                         {processed_at_kill:,} of {CODES:,} codes")
    outcome = "done" if finished else "NOT DONE"
    print(f"kill -9 to conversion done           {recovery:.1f} s ({outcome})")
    state = _state(killed)
    print(f"status                               {state.status}, {state.converted:,} converted")


if __name__ == "__main__":
    main()
