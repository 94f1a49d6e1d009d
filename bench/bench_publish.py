"""Figures for publishing a version: notification creation for 10,000 and 100,000 eligible
licenses (time, query count, µs per line), the idempotent second run, and the notices queued for
the smaller size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_upg \\
        .venv/bin/python bench/bench_publish.py [--sizes 10000,100000] [--per-org 20]

Each size gets its own product (old and new version, a unique SKU per run), N / per-org
organizations with one support registration each, and N active licenses of the old version
whose maintenance is current on the new version's release date. Seeding that many licenses
through license_issue (one signed file, audit event and email each) takes too long for a
benchmark, so this script bulk-inserts the License rows directly; nothing else does.

Read the first size's first run with care on PostgreSQL: the ANALYZE after seeding records
upgrades_upgradeline as empty, and with those statistics the line INSERT checks its NOT EXISTS
by scanning the table it is filling, once per license (quadratic: about 1.5 s at 10,000 lines,
about 100 s at 100,000 with --sizes 100000). A never-analyzed or non-empty table gets the index.

Emails go to the locmem backend, so measuring the notices sends nothing anywhere. Run by
bench/run.py (REDIS_URL set), the notices' emails are sent by its Celery worker, as in
production: the figure is the time until every notice email is marked sent ("delivered"), beside
the time until upgrade_notices_send returned ("committed"). Run alone without REDIS_URL, tasks
run in-process and both times are the same.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
# Never a real mail server from a benchmark: no SMTP, messages kept in memory.
os.environ["EMAIL_HOST"] = ""
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
# Through bench/run.py's worker when there is a broker; in-process otherwise.
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false" if os.environ.get("REDIS_URL") else "true"

import django

django.setup()

from common import Target, count_queries, emit  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core import mail  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from licensing.codes import generate_license_key  # noqa: E402
from licensing.models import License, Product, ProductVersion, SupportRegistration  # noqa: E402
from portal.models import Organization, OutboundEmail  # noqa: E402
from upgrades.services import notifications_create, upgrade_notices_send  # noqa: E402

BATCH = 5000


def account_numbers(count: int) -> list[str]:
    """Distinct eight-digit account numbers not yet taken.

    The model's default draws each one at random from 90 million: thousands drawn at once
    would collide now and then and fail the bulk insert.
    """
    taken = set(Organization.objects.values_list("account_number", flat=True))
    numbers: list[str] = []
    while len(numbers) < count:
        for number in random.sample(range(10_000_000, 100_000_000), count - len(numbers)):
            if str(number) not in taken:
                taken.add(str(number))
                numbers.append(str(number))
    return numbers


def seed(count: int, per_org: int, stamp: str, today: date) -> ProductVersion:
    """A product whose new version makes `count` licenses of its old version eligible."""
    product = Product.objects.create(sku=f"UPG-{count}-{stamp}", name=f"Upgrade bench {count}")
    old = ProductVersion.objects.create(
        product=product, version="1.0", released_on=today - timedelta(days=400)
    )
    new = ProductVersion.objects.create(
        product=product, version="2.0", released_on=today - timedelta(days=1)
    )
    org_count = max(1, -(-count // per_org))
    organizations = Organization.objects.bulk_create(
        [
            Organization(account_number=number, name=f"Upgrade bench {count} org {i} {stamp}")
            for i, number in enumerate(account_numbers(org_count))
        ],
        batch_size=BATCH,
    )
    registrations = SupportRegistration.objects.bulk_create(
        [
            SupportRegistration(
                organization=organization,
                company=organization.name,
                address="1 Street",
                country="BR",
                primary_name="P",
                primary_email=f"p{i}@org{i}.bench.example",
                primary_phone="1",
                technical_name="T",
                technical_email=f"t{i}@org{i}.bench.example",
                technical_phone="2",
            )
            for i, organization in enumerate(organizations)
        ],
        batch_size=BATCH,
    )
    batch: list[License] = []
    for index in range(count):
        org = index % org_count
        batch.append(
            License(
                key=generate_license_key(),
                owner=organizations[org],
                version=old,
                quantity=1 + index % 50,
                maintenance_start=today - timedelta(days=300),
                # Current on the release date: from that very day to about a year later.
                maintenance_end=new.released_on + timedelta(days=index % 365),
                source=License.Source.SERIAL,
                source_ref=f"BENCH-{index}",
                registration=registrations[org],
            )
        )
        if len(batch) == BATCH:
            License.objects.bulk_create(batch)
            batch.clear()
    License.objects.bulk_create(batch)
    return new


class ShownQueries:
    """Every statement with its time, for --show-queries (an execute wrapper: no cap)."""

    def __init__(self) -> None:
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - started, sql))


def measure_create(
    version: ProductVersion, today: date, count: int, label: str, *, show: bool = False
) -> float:
    shown = ShownQueries()
    with count_queries() as counter, connection.execute_wrapper(shown):
        started = time.perf_counter()
        created = notifications_create(version=version, today=today)
        seconds = time.perf_counter() - started
    per_line = f"{seconds / created.lines * 1e6:6.1f} µs/line" if created.lines else "-"
    print(
        f"notifications_create {count:>7,} licenses, {label}: {seconds:7.3f} s  "
        f"{counter.count:3} queries  {created.notifications:>6,} notifications  "
        f"{created.lines:>7,} lines  {per_line}"
    )
    if show:
        for took, sql in shown.queries:
            print(f"    {took:>7.3f} s  {' '.join(sql.split())[:90]}")
    return seconds


@dataclass(frozen=True)
class Notices:
    committed: float  # upgrade_notices_send returned: notices and outbox rows committed
    delivered: float  # every notice email marked sent by the worker (or in-process)
    statements: int  # in this process (the worker's own are not counted here)
    queued: int
    sent: int


def measure_notices(version: ProductVersion, count: int, *, wait: float = 600) -> Notices:
    mail.outbox = []
    since = timezone.now()
    with count_queries() as counter:
        started = time.perf_counter()
        queued = upgrade_notices_send(version=version)
        committed = time.perf_counter() - started
    emails = OutboundEmail.objects.filter(template="upgrade_notice", created_at__gte=since)
    waiting = emails.exclude(status__in=[OutboundEmail.Status.SENT, OutboundEmail.Status.FAILED])
    while waiting.exists() and time.perf_counter() - started < wait:
        time.sleep(0.02)
    delivered = time.perf_counter() - started
    sent = emails.filter(status=OutboundEmail.Status.SENT).count()
    per_notice = f"{delivered / queued * 1000:.2f} ms/notice" if queued else "-"
    where = "in-process" if settings.CELERY_TASK_ALWAYS_EAGER else "by the Celery worker"
    print(
        f"upgrade_notices_send {count:>7,} licenses: committed {committed:7.3f} s  "
        f"delivered {delivered:7.3f} s  {counter.count:6,} queries  {queued:,} notices queued  "
        f"{sent:,} emails sent {where} (locmem)  {per_notice}"
    )
    return Notices(committed, delivered, counter.count, queued, sent)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sizes", default="10000,100000", help="comma-separated license counts to publish to"
    )
    parser.add_argument("--per-org", type=int, default=20, help="licenses per organization")
    parser.add_argument(
        "--notices-for",
        type=int,
        default=10_000,
        help="also measure upgrade_notices_send for this size (0: never)",
    )
    parser.add_argument("--show-queries", action="store_true", help="list each run's queries")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    call_command("migrate", verbosity=0)
    stamp = str(time.time_ns())
    today = date.today()
    print(
        f"database {connection.vendor}; sizes {', '.join(f'{s:,}' for s in sizes)}; "
        f"{args.per_org} licenses per organization"
    )
    for count in sizes:
        started = time.perf_counter()
        version = seed(count, args.per_org, stamp, today)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # what autovacuum would do after a bulk load
        print(
            f"seeded {count:,} licenses in {-(-count // args.per_org):,} organizations "
            f"in {time.perf_counter() - started:.0f} s"
        )
        create = measure_create(version, today, count, "first run ", show=args.show_queries)
        measure_create(version, today, count, "second run", show=args.show_queries)
        if count == args.notices_for:
            notices = measure_notices(version, count)
            where = (
                "tasks in-process"
                if settings.CELERY_TASK_ALWAYS_EAGER
                else "sent by the Celery worker, whose statements are not counted here"
            )
            emit(f"Publish to {count:,} eligible licenses + notices to {notices.queued:,} "
                 "organizations", create + notices.delivered, "s",
                 target=Target("<=", 10, on="value"),
                 note=f"notifications_create {create:.2f} s + upgrade_notices_send "
                 f"{notices.committed:.2f} s committed, {notices.delivered:.2f} s until all "
                 f"{notices.sent:,} emails were sent; {notices.statements:,} statements for the "
                 f"notices (an execute wrapper, uncapped); emails to locmem, {where}")  # fmt: skip
            started = time.perf_counter()
            again = upgrade_notices_send(version=version)
            print(
                f"upgrade_notices_send {count:>7,} licenses, second run: "
                f"{time.perf_counter() - started:7.3f} s  {again} notices queued"
            )


if __name__ == "__main__":
    main()
