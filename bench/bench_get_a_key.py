"""Figures for the Get-a-key path: redemption time and queries, license-file sign/verify speed.

Run against the database in DATABASE_URL (SQLite under var/ by default):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \
        .venv/bin/python bench/bench_get_a_key.py

It creates its own organization, product and serials, and prints a table; it asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from licensing.licensefile import build_license_file, verify_license_file  # noqa: E402
from licensing.models import Product, ProductVersion  # noqa: E402
from licensing.services import serial_redeem, serials_create  # noqa: E402
from licensing.signing import get_public_key, get_signing_key  # noqa: E402
from portal.models import Membership, Organization, User  # noqa: E402

REGISTRATION = {
    "company": "Bench Co",
    "address": "1 Bench Street",
    "country": "BR",
    "primary_name": "P",
    "primary_email": "p@bench.example",
    "primary_phone": "1",
    "technical_name": "T",
    "technical_email": "t@bench.example",
    "technical_phone": "2",
}


def main(redemptions: int = 200) -> None:
    call_command("migrate", verbosity=0)
    stamp = str(time.time_ns())
    product = Product.objects.create(sku=f"BENCH-{stamp}", name="Bench Product")
    version = ProductVersion.objects.create(product=product, version="1.0")
    user = User.objects.create_user(email=f"bench-{stamp}@bench.example", password=None)
    organization = Organization.objects.create(name=f"Bench {stamp}")
    Membership.objects.create(user=user, organization=organization, role="admin")

    started = time.perf_counter()
    serials = serials_create(version=version, count=10_000)
    create_seconds = time.perf_counter() - started

    durations, queries = [], []
    for serial in serials[:redemptions]:
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            serial_redeem(
                code=serial.code,
                organization=organization,
                registration=REGISTRATION,
                acting_user=user,
            )
            durations.append(time.perf_counter() - started)
        queries.append(len(captured))

    key, payload = "ABCDE-FGHJK-MNPQR-STVWX-YZ012", {"data": {"id": "x", "attributes": {}}}
    signing_key, public_key = get_signing_key(), get_public_key()
    started = time.perf_counter()
    files = [
        build_license_file(payload=payload, license_key=key, signing_key=signing_key)
        for _ in range(2000)
    ]
    sign_rate = 2000 / (time.perf_counter() - started)
    started = time.perf_counter()
    for text in files:
        verify_license_file(text, license_key=key, public_key=public_key)
    verify_rate = 2000 / (time.perf_counter() - started)

    durations.sort()
    print(f"database                      {connection.vendor}")
    print(f"serials_create 10,000         {create_seconds:.2f} s")
    print(f"serial_redeem median          {statistics.median(durations) * 1000:.1f} ms")
    print(f"serial_redeem p95             {durations[int(len(durations) * 0.95)] * 1000:.1f} ms")
    print(f"serial_redeem queries         {min(queries)}–{max(queries)} per redemption")
    print(f"license files signed          {sign_rate:,.0f} /s")
    print(f"license files verified        {verify_rate:,.0f} /s")


if __name__ == "__main__":
    main()
