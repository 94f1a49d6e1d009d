"""Figures for Enterprise Flexible: a contract with 50 lines and 100,000 drawdowns.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_ef \\
        .venv/bin/python bench/bench_ef.py [--drawdowns 100000] [--small 1000] [--service 300]

Prints, for a contract with `--small` drawdowns and one with `--drawdowns`: the contract page's
and the true-up report's (page, CSV, PDF) median time and query count. The query counts must
be equal at both sizes. Then drawdowns per second through the service the wizard calls
(drawdown_create: lock, mint, audit, the outbox row of its email with its signed file, which
the Celery worker writes in the full stack), beside two
floors measured in the same run: the mint alone (license_issue), and raw psycopg inserts of the
same rows in the same transactions.

Statements are counted with connection.execute_wrapper: Django's query log keeps only 9,000,
which would under-report. Seeding 100,000 drawdowns through the service (one signed file each)
takes too long for a benchmark, so this script bulk-inserts those rows directly; nothing else
does. It creates its own organization, catalog and contracts, and leaves them in the database.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
# Emails are handed over in-process and kept in memory: what is measured is the portal's work.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

import django

django.setup()

import psycopg  # noqa: E402
from common import emit  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from enterprise_flex.models import EFContract, EFDrawdown, EFLine  # noqa: E402
from enterprise_flex.services import (  # noqa: E402
    DrawdownRequest,
    contract_create,
    contract_user_set,
    drawdown_create,
    line_add,
)
from licensing.codes import generate_license_key  # noqa: E402
from licensing.models import (  # noqa: E402
    License,
    Product,
    ProductVersion,
    SupportRegistration,
    add_months,
)
from licensing.services import IssueSource, license_issue  # noqa: E402
from portal.emails import emails_written_by_sender  # noqa: E402
from portal.models import Membership, Organization, User  # noqa: E402

LINES = 50
CHUNK = 5_000


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


# ---------------------------------------------------------------------------------------------
# Seeding


def catalog(stamp: str) -> list[ProductVersion]:
    products = Product.objects.bulk_create(
        [Product(sku=f"EFB-{i:02d}-{stamp}", name=f"Bench product {i:02d}") for i in range(LINES)]
    )
    return ProductVersion.objects.bulk_create(
        [ProductVersion(product=p, version="1.0", released_on=date(2025, 1, 1)) for p in products]
    )


def contract_with_lines(
    label: str, stamp: str, versions: list[ProductVersion]
) -> tuple[EFContract, User]:
    """A customer, its super user and a contract of 50 lines, started 20 months ago."""
    organization = Organization.objects.create(
        name=f"Bench EF {label} {stamp}", address="1 Bench Street", country="BR"
    )
    user = User.objects.create_user(email=f"ef-{label}-{stamp}@bench.example", password=None)
    Membership.objects.create(user=user, organization=organization, role="admin")
    start = timezone.localdate() - timedelta(days=600)
    contract = contract_create(
        organization=organization,
        period_start=start,
        period_end=add_months(start, 36) - timedelta(days=1),
        actor=None,
    )
    contract_user_set(contract=contract, user=user, level="super", actor=None)
    for index, version in enumerate(versions):
        line_add(
            contract=contract,
            version=version,
            committed_quantity=5_000,
            unit_value=Decimal("10.00") + index,
            overage_allowed=True,
            actor=None,
        )
    site = contract.sites.get()
    site.contact_email = "site@bench.example"
    site.save()
    return contract, user


def seed_drawdowns(contract: EFContract, count: int) -> None:
    """Bulk rows shaped as drawdown_create writes them, spread over the period so far."""
    lines = list(contract.lines.order_by("pk"))
    site = contract.sites.get()
    user = contract.users.get().user
    registration = SupportRegistration.objects.create(
        organization=contract.organization,
        company=contract.organization.name,
        address="1 Bench Street",
        country="BR",
        primary_name="Site",
        primary_email="site@bench.example",
        primary_phone="1",
        technical_name="Site",
        technical_email="site@bench.example",
        technical_phone="1",
    )
    days = max(1, (timezone.localdate() - contract.period_start).days)
    now = timezone.now()
    for first in range(0, count, CHUNK):
        licenses, drawdowns = [], []
        for index in range(first, min(count, first + CHUNK)):
            line = lines[index % len(lines)]
            drawn_on = contract.period_start + timedelta(days=index * days // count)
            license = License(
                id=uuid.uuid4(),
                key=generate_license_key(),
                owner_id=contract.organization_id,
                version_id=line.version_id,
                quantity=1 + index % 3,
                maintenance_start=drawn_on,
                maintenance_end=contract.grey_year_end,
                source=License.Source.EF_DRAWDOWN,
                source_ref=contract.number,
                registration=registration,
                issued_at=now,
                issued_by=user,
                file_issued_at=now,
            )
            licenses.append(license)
            drawdowns.append(
                EFDrawdown(
                    contract=contract,
                    line=line,
                    site=site,
                    quantity=license.quantity,
                    license=license,
                    drawn_on=drawn_on,
                    created_by=user,
                    token=secrets.token_urlsafe(16),
                )
            )
        with transaction.atomic():
            License.objects.bulk_create(licenses)
            EFDrawdown.objects.bulk_create(drawdowns)
    # The lines' figures as drawdown_create keeps them: the sum of their drawdowns.
    for line_id, total in (
        EFDrawdown.objects.filter(contract=contract)
        .values_list("line_id")
        .annotate(Sum("quantity"))
    ):
        EFLine.objects.filter(pk=line_id).update(drawn_quantity=total)


# ---------------------------------------------------------------------------------------------
# Pages


def measure(client: Client, url: str, runs: int) -> tuple[float, int, int]:
    """Median seconds, statements of one request, response size."""
    durations, queries, size = [], 0, 0
    client.get(url)  # warm caches and imports
    for _ in range(runs):
        with connection.execute_wrapper(captured := Statements()):
            started = time.perf_counter()
            response = client.get(url)
            body = (
                b"".join(response.streaming_content)
                if hasattr(response, "streaming_content")
                else response.content
            )
            durations.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        queries, size = len(captured), len(body)
    return statistics.median(durations), queries, size


def pages(contract: EFContract) -> list[tuple[str, str]]:
    base = f"/enterprise-flex/{contract.number}"
    year = contract.year_of(timezone.localdate())
    current = year.number if year else 1
    return [
        ("contract page", f"{base}/"),
        ("true-up page, year 1", f"{base}/true-up/1/"),
        (f"true-up page, year {current}", f"{base}/true-up/{current}/"),
        ("true-up CSV, year 1", f"{base}/true-up/1/true-up.csv"),
        ("true-up PDF, year 1", f"{base}/true-up/1/true-up.pdf"),
        ("deployment report, year 1", f"{base}/reports/1/"),
        ("drawdown list", f"{base}/drawdowns/"),
        ("license catalog", f"{base}/licenses/"),
    ]


# ---------------------------------------------------------------------------------------------
# Drawdowns per second


def service_rate(contract: EFContract, user: User, count: int) -> tuple[float, Statements]:
    line = contract.lines.order_by("pk").first()
    site = contract.sites.get()
    assert line is not None
    with connection.execute_wrapper(captured := Statements()):
        started = time.perf_counter()
        for _ in range(count):
            drawdown_create(
                contract=contract,
                request=DrawdownRequest(line_id=line.pk, site_id=site.pk, quantity=1),
                actor=user,
                token=secrets.token_urlsafe(16),
            )
        seconds = time.perf_counter() - started
    return count / seconds, captured


def mint_rate(contract: EFContract, user: User, count: int) -> float:
    """license_issue alone: the floor of any drawdown that issues a signed, emailed license."""
    version = contract.lines.order_by("pk").first().version  # type: ignore[union-attr]
    registration = SupportRegistration.objects.filter(organization=contract.organization).first()
    assert registration is not None
    today = timezone.localdate()
    started = time.perf_counter()
    for _ in range(count):
        with transaction.atomic():
            license_issue(
                source=IssueSource(
                    kind=License.Source.EF_DRAWDOWN,
                    ref=contract.number,
                    version=version,
                    quantity=1,
                    maintenance_start=today,
                    maintenance_end=contract.grey_year_end,
                ),
                owner=contract.organization,
                registration=registration,
                acting_user=user,
            )
    return count / (time.perf_counter() - started)


RAW_SQL = {
    "lock": "SELECT id, drawn_quantity FROM enterprise_flex_efline WHERE id = %s FOR UPDATE",
    "line": "UPDATE enterprise_flex_efline SET drawn_quantity = drawn_quantity + 1 WHERE id = %s",
    "registration": (
        "INSERT INTO licensing_supportregistration (organization_id, company, address, country,"
        " primary_name, primary_email, primary_phone, technical_name, technical_email,"
        " technical_phone, created_at, updated_at, country_legacy) VALUES (%s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, now(), now(), '') RETURNING id"
    ),
    "license": (
        "INSERT INTO licensing_license (id, key, owner_id, version_id, quantity,"
        " maintenance_start, maintenance_end, host_id, status, source, source_ref,"
        " registration_id, issued_at, issued_by_id, file_issued_at, rehosts_granted)"
        " VALUES (%s, %s, %s, %s, 1, %s, %s, '', 'active', 'ef_drawdown', %s, %s, now(), %s,"
        " now(), 0)"
    ),
    "audit": (
        "INSERT INTO portal_auditevent (id, created_at, actor_id, actor_email, organization_id,"
        " action, object_type, object_id, details) VALUES (%s, now(), %s, %s, %s, %s, %s, %s,"
        " %s::jsonb)"
    ),
    "outbox": (
        'INSERT INTO portal_outboundemail (id, created_at, template, "to", subject, body_text,'
        " body_html, attachments, status, attempts, last_error, next_attempt_at) VALUES (%s,"
        " now(), 'license_issued', %s::jsonb, %s, %s, %s, %s::jsonb, 'pending', 0, '', now())"
    ),
    # What the service writes when its worker writes the email (portal.emails.queue_email_later).
    "outbox_later": (
        'INSERT INTO portal_outboundemail (id, created_at, template, "to", subject, body_text,'
        " body_html, attachments, compose, status, attempts, last_error, next_attempt_at) VALUES"
        " (%s, now(), 'license_issued', '[]'::jsonb, '', '', '', '[]'::jsonb, %s::jsonb,"
        " 'pending', 0, '', now())"
    ),
    "drawdown": (
        "INSERT INTO enterprise_flex_efdrawdown (contract_id, line_id, site_id, quantity,"
        " overage_quantity, license_id, drawn_on, created_at, created_by_id, token) VALUES"
        " (%s, %s, %s, 1, 0, %s, %s, now(), %s, %s)"
    ),
}


def raw_rate(contract: EFContract, user: User, count: int) -> float:
    """The same rows, one transaction per drawdown, straight through psycopg: the floor."""
    line = contract.lines.order_by("pk").last()
    site = contract.sites.get()
    assert line is not None
    organization = contract.organization
    today = timezone.localdate()
    later = emails_written_by_sender()
    body = "x" * 1_200  # the rendered email's text and HTML, about this long
    # A sendable attachment: the beat's relay sends these rows like any other (to locmem).
    attachment = (
        '[{"filename": "x.lic", "content": "' + "A" * 1_600 + '", "mimetype": "text/plain"}]'
    )
    database = settings.DATABASES["default"]
    conninfo = {
        "dbname": database["NAME"],
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
    }
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v}) as raw:
        started = time.perf_counter()
        for _ in range(count):
            with raw.transaction(), raw.cursor() as cursor:
                cursor.execute(RAW_SQL["lock"], [line.pk])
                cursor.execute(RAW_SQL["line"], [line.pk])
                cursor.execute(
                    RAW_SQL["registration"],
                    [organization.pk, organization.name, "1 Bench Street", "BR", "Site",
                     "site@bench.example", "1", "Site", "site@bench.example", "1"],
                )  # fmt: skip
                registration_id = cursor.fetchone()[0]  # type: ignore[index]
                license_id = uuid.uuid4()
                cursor.execute(
                    RAW_SQL["license"],
                    [license_id, generate_license_key(), organization.pk, line.version_id, today,
                     contract.grey_year_end, contract.number, registration_id, user.pk],
                )  # fmt: skip
                for action, object_type, object_id in (
                    ("license.issued", "licensing.license", str(license_id)),
                    ("ef.drawdown", "enterprise_flex.efdrawdown", "0"),
                ):
                    cursor.execute(
                        RAW_SQL["audit"],
                        [uuid.uuid4(), user.pk, user.email, organization.pk, action, object_type,
                         object_id, '{"quantity": 1}'],
                    )  # fmt: skip
                if later:  # the row the service writes: its worker writes the email from it
                    spec = {"composer": "license", "language": "en", "license": str(license_id),
                            "event": "issued", "actor": user.pk, "partner": None,
                            "actor_opens": True, "acting_outsider": False,
                            "context": {"drawdown_contract": contract.number,
                                        "drawdown_site": site.name}}  # fmt: skip
                    cursor.execute(RAW_SQL["outbox_later"], [uuid.uuid4(), json.dumps(spec)])
                else:
                    cursor.execute(
                        RAW_SQL["outbox"],
                        [uuid.uuid4(), '["site@bench.example"]', "Your license key", body, body,
                         attachment],
                    )  # fmt: skip
                cursor.execute(
                    RAW_SQL["drawdown"],
                    [contract.pk, line.pk, site.pk, license_id, today, user.pk,
                     secrets.token_urlsafe(16)],
                )  # fmt: skip
        seconds = time.perf_counter() - started
    return count / seconds


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drawdowns", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--service", type=int, default=300, help="drawdowns through the service")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    if connection.vendor != "postgresql":
        print("warning: figures are meant for PostgreSQL (set DATABASE_URL)")
    call_command("migrate", verbosity=0)
    stamp = str(time.time_ns())
    started = time.perf_counter()
    versions = catalog(stamp)
    small, small_user = contract_with_lines("small", stamp, versions)
    big, big_user = contract_with_lines("big", stamp, versions)
    seed_drawdowns(small, args.small)
    seed_drawdowns(big, args.drawdowns)
    if connection.vendor == "postgresql":
        # What autovacuum does after a bulk load: statistics for the planner, and the
        # visibility map that lets counts and sums read the indexes alone.
        with connection.cursor() as cursor:
            for table in (
                "licensing_license",
                "enterprise_flex_efdrawdown",
                "enterprise_flex_efline",
            ):
                cursor.execute(f"VACUUM ANALYZE {table}")
    assert EFDrawdown.objects.filter(contract=big).count() == args.drawdowns
    print(
        f"database {connection.vendor}; {LINES} lines; seeded {args.small:,} and "
        f"{args.drawdowns:,} drawdowns in {time.perf_counter() - started:.0f} s"
    )

    results: dict[str, list[tuple[float, int, int]]] = {}
    for contract, user in ((small, small_user), (big, big_user)):
        client = Client()
        client.force_login(user)
        current = contract.year_of(timezone.localdate())
        for label, url in pages(contract):
            if current is not None:
                label = label.replace(f"year {current.number}", "current year")
            results.setdefault(label, []).append(measure(client, url, args.runs))
    print()
    print(
        f"{'page (super user, median of ' + str(args.runs) + ')':<34}"
        f"{args.small:>9,} drawdowns        {args.drawdowns:>9,} drawdowns"
    )
    for label, ((t_small, q_small, _s), (t_big, q_big, size)) in results.items():
        same = "same queries" if q_small == q_big else "QUERIES GROW"
        print(
            f"{label:<34}{t_small * 1000:7.1f} ms {q_small:>3} q     "
            f"{t_big * 1000:7.1f} ms {q_big:>3} q   {same}  ({size / 1024:,.0f} KiB)"
        )
    growing = [label for label, (a, b) in results.items() if a[1] != b[1]]

    print()
    # Interleaved rounds, medians: the machine is shared, and a slow minute should hit all three.
    rounds = 3
    count = max(1, args.service // rounds)
    rates: dict[str, list[float]] = {"service": [], "mint": [], "raw": []}
    statements = Statements()
    for _ in range(rounds):
        rate, captured = service_rate(big, big_user, count)
        rates["service"].append(rate)
        statements.kinds.update(captured.kinds)
        rates["mint"].append(mint_rate(big, big_user, count))
        rates["raw"].append(raw_rate(big, big_user, count))
    done = count * rounds
    per = ", ".join(f"{word.lower()} {n / done:.0f}" for word, n in statements.kinds.most_common())
    labels = {
        "service": "drawdown_create (the wizard's service)",
        "mint": "floor: license_issue alone (the mint)",
        "raw": "floor: raw psycopg, same rows",
    }
    print(f"{done} drawdowns each way, in {rounds} interleaved rounds (median, min–max):")
    for key, label in labels.items():
        values = rates[key]
        print(
            f"  {label:<40}{statistics.median(values):7.1f} /s   "
            f"({min(values):.1f}–{max(values):.1f})"
        )
    print(f"  statements per drawdown through the service: {len(statements) / done:.1f} ({per})")
    service, raw = statistics.median(rates["service"]), statistics.median(rates["raw"])
    emit("EF drawdowns through the service", service, "/s", floor_name="raw psycopg, same rows",
         floor_value=raw, note=f"{len(statements) / done:.1f} statements per drawdown; "
         f"license_issue alone {statistics.median(rates['mint']):.1f} /s")  # fmt: skip
    line = big.lines.order_by("pk").first()
    assert line is not None
    line.refresh_from_db()
    total = EFDrawdown.objects.filter(line=line).aggregate(t=Sum("quantity"))["t"]
    assert line.drawn_quantity == total, "a line's figure must equal the sum of its drawdowns"
    if growing:
        print(f"\nFAIL: queries grow with drawdowns on: {', '.join(growing)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
