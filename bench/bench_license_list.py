"""Figures for My licenses: list page time and queries at 1,000 and 100,000 licenses, and the
streamed CSV export of 100,000 rows (time, Python peak memory).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
        .venv/bin/python bench/bench_license_list.py [--big 100000] [--small 1000]

Seeding 100,000 licenses through license_issue (one signed file and audit event each) takes too
long for a benchmark, so this script bulk-inserts the rows directly; nothing else does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from licensing.codes import generate_license_key  # noqa: E402
from licensing.models import (  # noqa: E402
    CustomField,
    CustomFieldValue,
    License,
    Product,
    ProductVersion,
    SupportRegistration,
)
from portal.models import Membership, Organization, User  # noqa: E402


def catalog(stamp: str) -> list[ProductVersion]:
    """One catalog shared by every organization, as in production."""
    products = [
        Product.objects.create(sku=f"B-{i}-{stamp}", name=f"Bench product {i}") for i in range(5)
    ]
    return [ProductVersion.objects.create(product=p, version="1.0") for p in products]


def seed(count: int, stamp: str, versions: list[ProductVersion]) -> User:
    organization = Organization.objects.create(name=f"Bench {count} {stamp}")
    user = User.objects.create_user(email=f"bench-{count}-{stamp}@bench.example", password=None)
    Membership.objects.create(user=user, organization=organization, role="admin")
    registration = SupportRegistration.objects.create(
        organization=organization,
        company="Bench Co",
        address="1 Street",
        country="BR",
        primary_name="P",
        primary_email="p@bench.example",
        primary_phone="1",
        technical_name="T",
        technical_email="t@bench.example",
        technical_phone="2",
    )
    field = CustomField.objects.create(organization=organization, name="Cost center")
    today = date.today()
    batch: list[License] = []
    for index in range(count):
        batch.append(
            License(
                key=generate_license_key(),
                owner=organization,
                version=versions[index % 5],
                quantity=1 + index % 50,
                maintenance_start=today - timedelta(days=200),
                maintenance_end=today + timedelta(days=index % 700 - 200),
                source="serial",
                source_ref=f"BENCH-{index}",
                registration=registration,
            )
        )
        if len(batch) == 5000:
            _flush(batch, field)
    _flush(batch, field)
    return user


def _flush(batch: list[License], field: CustomField) -> None:
    License.objects.bulk_create(batch)
    CustomFieldValue.objects.bulk_create(
        [
            CustomFieldValue(license=lic, field=field, value=f"CC-{i % 20}")
            for i, lic in enumerate(batch)
        ]
    )
    batch.clear()


def measure_list(client: Client, runs: int = 15) -> tuple[float, int]:
    durations, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/licenses/", {"sort": "-maintenance"})
            durations.append(time.perf_counter() - started)
        assert response.status_code == 200
        queries = len(captured)
    return statistics.median(durations), queries


def measure_export(email: str) -> None:
    """Runs in a fresh process, so that its peak RSS is the export's and not the seeding's."""
    client = Client()
    client.force_login(User.objects.get(email=email))
    client.get("/licenses/")  # warm imports and connections before the baseline
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    response = client.get("/licenses/export.csv")
    size = sum(len(chunk) for chunk in response.streaming_content)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"CSV export                          {seconds:.1f} s   {size / 1e6:.1f} MB written   "
        f"peak RSS {peak:.0f} MiB (baseline {baseline:.0f} MiB, +{peak - baseline:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--export", help="internal: measure the export for this user")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    if args.export:
        measure_export(args.export)
        return
    call_command("migrate", verbosity=0)
    stamp = str(time.time_ns())
    print(f"database {connection.vendor}; seeding {args.small:,} and {args.big:,} licenses…")
    started = time.perf_counter()
    versions = catalog(stamp)
    small, big = seed(args.small, stamp, versions), seed(args.big, stamp, versions)
    print(f"seeded in {time.perf_counter() - started:.0f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum would do after a bulk load
    results = {}
    for label, user in (("small", small), ("big", big)):
        client = Client()
        client.force_login(user)
        results[label] = measure_list(client)
    for label, count in (("small", args.small), ("big", args.big)):
        median, queries = results[label]
        print(
            f"list page, {count:>7,} licenses   median {median * 1000:7.1f} ms   {queries} queries"
        )
    print(f"ratio big/small median             {results['big'][0] / results['small'][0]:.2f}")
    print(f"CSV export of {args.big:,} rows in a fresh process:")
    sys.stdout.flush()
    subprocess.run([sys.executable, __file__, "--export", big.email], check=True)  # noqa: S603


if __name__ == "__main__":
    main()
