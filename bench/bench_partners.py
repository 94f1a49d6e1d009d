"""Figures for channel partners: a partner with many delegating customers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
        .venv/bin/python bench/bench_partners.py [--customers 5000] [--small 50]

The Customers page (first page, a search, a deep page) and a context switch ("Act for this
customer" and the next page in the customer's context), each at a small and a large number of
customers, beside the floor: a page that only loads the session and the user. Neither time nor
queries may grow with the number of customers.
"""

from __future__ import annotations

import argparse
import time

from common import Timing, install_floor_view, measure, report
from django.core.management import call_command
from django.db import connection
from django.test import Client

from portal.models import Delegation, Membership, Organization, User
from portal.policy import Scope

ALL_SCOPES = [scope.value for scope in Scope]


def seed(count: int, stamp: str) -> tuple[User, list[int]]:
    partner = Organization.objects.create(
        name=f"Bench partner {count} {stamp}", kind=Organization.Kind.PARTNER
    )
    user = User.objects.create_user(email=f"partner-{count}-{stamp}@bench.example", password=None)
    Membership.objects.create(user=user, organization=partner, role=Membership.Role.ADMIN)
    customers = Organization.objects.bulk_create(
        [
            Organization(
                name=f"Customer {index:05d} {stamp}",
                account_number=f"{stamp[-5:]}{count % 97:02d}{index:05d}",
            )
            for index in range(count)
        ],
        batch_size=2000,
    )
    delegations = Delegation.objects.bulk_create(
        [Delegation(customer=c, partner=partner, scopes=ALL_SCOPES) for c in customers],
        batch_size=2000,
    )
    return user, [d.pk for d in delegations]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--small", type=int, default=50)
    args = parser.parse_args()
    install_floor_view()
    call_command("migrate", verbosity=0)
    stamp = str(time.time_ns())
    print(
        f"database {connection.vendor}; partners with {args.small:,} / {args.customers:,} customers"
    )
    seeded = {n: seed(n, stamp) for n in (args.small, args.customers)}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    floor_client = Client()
    floor_client.force_login(seeded[args.small][0])
    floor = measure(lambda: floor_client.get("/bench-floor/"))
    report("floor: session and user only", floor)
    for count, (user, delegation_ids) in seeded.items():
        measure_partner(count, user, delegation_ids[len(delegation_ids) // 2], floor)


def measure_partner(count: int, user: User, target: int, floor: Timing) -> None:
    client = Client()
    client.force_login(user)
    last_page = (count + 24) // 25
    pages = [
        ("first page", {}),
        ("search by name", {"q": "Customer 00042"}),
        (f"last page ({last_page})", {"page": last_page}),
    ]
    for label, query in pages:
        report(
            f"Customers, {label} ({count:,})",
            measure(lambda query=query: client.get("/partners/customers/", query)),
            floor,
        )

    def switch() -> None:
        client.post(f"/partners/customers/{target}/act/")
        client.get("/dashboard/")
        client.post("/partners/stop/")

    report(f"context switch: act, dashboard, back ({count:,})", measure(switch), floor)
    client.post(f"/partners/customers/{target}/act/")
    report(
        f"dashboard while acting for a customer ({count:,})",
        measure(lambda: client.get("/dashboard/")),
        floor,
    )


if __name__ == "__main__":
    main()
