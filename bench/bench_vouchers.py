"""Figures for the Voucher center: converting 1,000 and 10,000 vouchers in one submission.

Run against the database in DATABASE_URL (SQLite under var/ by default):

    psql -h 127.0.0.1 -U postgres -c 'create database portal_bench_vouchers'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_vouchers \
        .venv/bin/python bench/bench_vouchers.py [--quick]

It creates its own partner, customer, product and vouchers, and prints a table; it asserts
nothing. "combined" is the default of the Voucher center (vouchers of one product version make
one license); "separate" issues one license per voucher, whose cost is license_issue's own.
"""

from __future__ import annotations

import argparse
import os
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

from collections import Counter  # noqa: E402

from common import Target, emit  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from licensing.models import Product, ProductVersion  # noqa: E402
from portal.models import Membership, Organization, User  # noqa: E402
from vouchers.models import Voucher  # noqa: E402
from vouchers.selectors import vouchers_check  # noqa: E402
from vouchers.services import voucher_batch_create, vouchers_convert  # noqa: E402

REGISTRATION = {
    "company": "Bench Co", "address": "1 Bench Street", "country": "BR",
    "primary_name": "P", "primary_email": "p@bench.example", "primary_phone": "1",
    "technical_name": "T", "technical_email": "t@bench.example", "technical_phone": "2",
}  # fmt: skip


class Statements:
    """Counts every statement by its first word (Django's query log stops at 9,000)."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
        self.kinds["SAVEPOINT" if word == "RELEASE" else word] += 1
        return execute(sql, params, many, context)

    def __len__(self) -> int:
        return sum(self.kinds.values())

    def __str__(self) -> str:
        return " ".join(f"{word.lower()} {count}" for word, count in self.kinds.most_common())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2,000 in the one-license run")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    stamp = str(time.time_ns())
    product = Product.objects.create(sku=f"BENCH-V-{stamp}", name="Bench Appliance Suite")
    version = ProductVersion.objects.create(product=product, version="1.0")
    oem = Organization.objects.create(name=f"Bench OEM {stamp}", kind=Organization.Kind.PARTNER)
    user = User.objects.create_user(email=f"bench-v-{stamp}@bench.example", password=None)
    customer = Organization.objects.create(name=f"Bench Customer {stamp}")
    Membership.objects.create(user=user, organization=customer, role="admin")

    # The figure: 10,000 vouchers, one license each, in one submission.
    runs = [(1_000, True), (2_000 if args.quick else 10_000, False)]
    needed = sum(count for count, _combine in runs) + 1_000

    started = time.perf_counter()
    batch = voucher_batch_create(oem=oem, version=version, count=needed, quantity_per_voucher=1)
    create_seconds = time.perf_counter() - started
    codes = list(batch.vouchers.order_by("pk").values_list("code", flat=True))

    print(f"database                          {connection.vendor}")
    print(f"voucher_batch_create {needed:>6,}      {create_seconds:6.2f} s")

    preview = codes[-1_000:]
    with connection.execute_wrapper(captured := Statements()):
        started = time.perf_counter()
        checks = vouchers_check(
            entries=preview, organization=customer, actor=user, today=timezone.localdate()
        )
        seconds = time.perf_counter() - started
    assert all(check.usable for check in checks)
    print(f"preview check   1,000 codes       {seconds:6.2f} s  {len(captured):>6} queries")

    offset = 0
    for count, combine in runs:
        submission = codes[offset : offset + count]
        offset += count
        with connection.execute_wrapper(captured := Statements()):
            started = time.perf_counter()
            result = vouchers_convert(
                codes=submission,
                organization=customer,
                registration=REGISTRATION,
                acting_user=user,
                combine=combine,
            )
            seconds = time.perf_counter() - started
        assert result.conversion.status == "done" and result.conversion.converted == count
        mode = "combined" if combine else "separate"
        print(
            f"convert {count:>6,} {mode:<9}         {seconds:6.2f} s  {len(captured):>6} queries"
            f"  {len(result.licenses):>6,} licenses  ({count / seconds:,.0f} vouchers/s)"
        )
        print(f"    {captured}")
        if not combine:
            emit(f"Vouchers: {count:,} in one submission, one license each", seconds, "s",
                 target=Target("<=", 10, on="value"),
                 note=f"{len(captured):,} statements ({captured})")  # fmt: skip
    redeemed = Voucher.objects.filter(batch=batch, status="redeemed").count()
    print(f"vouchers redeemed                 {redeemed:,} of {needed:,}")


if __name__ == "__main__":
    main()
