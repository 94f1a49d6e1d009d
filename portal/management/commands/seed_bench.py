"""`manage.py seed_bench --scale N [--reset]`: the data set of bench/ and the load test.

A fixture generator, not a domain path: licenses, their `license.issued` audit events, custom
values and shares are bulk-loaded (PostgreSQL COPY), because minting 100,000 licenses through
license_issue would take most of an hour. Everything a load test spends (serials, vouchers,
upgrade notifications) is made by the apps' own services, so it is exactly what staff would
create. The rows keep every invariant of `manage.py check_invariants`.

It spans every app, so it reaches their models through the app registry and their services by
module name: the layering contract (pyproject.toml) is about the portal's own code depending on
the domain apps, which this command, a composition root like portal.wsgi, does not change.
"""

from __future__ import annotations

import importlib
import json
import random
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.utils import timezone

from portal.models import AuditEvent, Membership, Organization, User

BENCH_PASSWORD = "bench-password-2026"  # noqa: S105 - bench databases only, printed below
LARGE_ADMIN = "bench-large@bench.example"
SMALL_ADMIN = "bench-small@bench.example"
LOAD_USER = "load-{:03d}@bench.example"
SMALL_SCALE = 1_000
PRODUCTS = [
    ("BENCH-EPP", "Endpoint Protection Platform", "Endpoint", ["14.2", "14.3", "15.0"]),
    ("BENCH-WSG", "Web Security Gateway", "Network", ["7.1", "7.2", "8.0"]),
    ("BENCH-DLP", "Data Loss Prevention Monitor", "Information protection", ["15.8", "16.0"]),
    ("BENCH-ENC", "Endpoint Encryption", "Endpoint", ["11.3", "11.4"]),
    ("BENCH-SRV", "Server Advanced", "Data center", ["6.9", "7.0", "7.1"]),
    ("BENCH-MGW", "Messaging Gateway", "Email", ["10.7", "10.8"]),
]
UPGRADE_SKU = ("BENCH-MSS", "Mail Security for Servers", "Email", ["8.0", "9.0"])
COST_CENTERS = [f"CC-{n:04d}" for n in range(1000, 1040)]
REGIONS = ["North", "South", "East", "West", "LATAM", "EMEA", "APAC"]
HOSTS = [f"host-{n:05d}.corp.example" for n in range(500)]


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_load(model: type[models.Model], objects: Iterable[models.Model]) -> int:
    """Writes model instances with COPY on PostgreSQL (bulk_create elsewhere); returns the count.

    Auto-increment ids are left to the database; every other column is the model's own value,
    prepared by its field exactly as a save would.
    """
    fields = [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
    ]
    count = 0
    if connection.vendor != "postgresql":
        for chunk in _chunks(objects, 2000):
            model._default_manager.bulk_create(chunk)
            count += len(chunk)
        return count
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    # COPY's text format takes JSON as text, and every other column here as the Python value
    # itself: preparing each cell through its field tripled the time of a 100,000 load.
    json_fields = {f.attname: f.encoder for f in fields if isinstance(f, models.JSONField)}
    names = [f.attname for f in fields]
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objects:
            row = [getattr(obj, name) for name in names]
            for index, name in enumerate(names):
                if name in json_fields:
                    row[index] = json.dumps(row[index], cls=json_fields[name])
            copy.write_row(row)
            count += 1
    return count


class Command(BaseCommand):
    help = (
        "Create the benchmark data set: an organization with N licenses, one with 1,000, load "
        "test organizations with users, unredeemed serials and vouchers, upgrade notifications."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scale", type=int, default=100_000, help="licenses of the large org")
        parser.add_argument("--load-orgs", type=int, default=40, help="load-test organizations")
        parser.add_argument("--serials", type=int, default=5_000, help="unredeemed serials")
        parser.add_argument("--vouchers", type=int, default=5_000, help="unredeemed vouchers")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="empty the database first (only a database whose name starts with portal_bench)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scale = options["scale"]
        self.verbosity = options["verbosity"]
        if scale < 1:
            raise CommandError("--scale must be at least 1.")
        started = time.perf_counter()
        if options["reset"]:
            name = str(connection.settings_dict["NAME"])
            if not name.rsplit("/", 1)[-1].startswith("portal_bench"):
                raise CommandError(
                    f"--reset empties the whole database; {name!r} is not a portal_bench* one."
                )
            call_command("flush", interactive=False, verbosity=0)
        elif User.objects.filter(email=LARGE_ADMIN).exists():
            self.stdout.write("The bench data set is already here (use --reset to rebuild it).")
            return
        self.today = timezone.localdate()
        self.now = timezone.now()
        self.password = make_password(BENCH_PASSWORD)  # hashed once: hashing is slow on purpose
        self.rng = random.Random(13)  # noqa: S311 - fixture data, reproducible
        self.started = started
        with transaction.atomic():
            self.versions = self._catalog()
            large = self._organization("Bench Large Corp", LARGE_ADMIN, members=3)
            small = self._organization("Bench Small Ltd", SMALL_ADMIN, members=1)
            self._licenses(large, scale)
            self._step("licenses")
            self._licenses(small, min(SMALL_SCALE, scale))
            load_orgs = [
                self._organization(
                    f"Bench Load {n:03d} Inc", LOAD_USER.format(n), members=1, prefix=f"l{n}"
                )
                for n in range(1, options["load_orgs"] + 1)
            ]
            for organization in load_orgs:
                self._licenses(organization, 150)
            # Shared with the first load-test organization, so that the small one holds
            # exactly its 1,000 licenses (the list's figure at 1,000 compares with the large).
            if load_orgs:
                self._shares(large, load_orgs[0], count=min(500, scale // 10))
                self._upgrades(load_orgs)
            self._step("shares and upgrades")
            self._serials(options["serials"])
            self._step("serials")
            self._vouchers(options["vouchers"])
            self._step("vouchers")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # What autovacuum would do after a bulk load: statistics, and the visibility map
                # without which an index-only scan still visits the heap for every row.
                # VACUUM cannot run in a transaction (a test's): there, statistics only.
                cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE")
        self.stdout.write(
            f"Seeded {scale:,} + {min(SMALL_SCALE, scale):,} + {150 * options['load_orgs']:,} "
            f"licenses in {time.perf_counter() - started:.1f} s. Users: {LARGE_ADMIN}, "
            f"{SMALL_ADMIN}, {LOAD_USER.format(1)}…{LOAD_USER.format(options['load_orgs'])}; "
            f"password {BENCH_PASSWORD}"
        )

    def _step(self, name: str) -> None:
        if self.verbosity > 1:
            self.stdout.write(f"  {name} done at {time.perf_counter() - self.started:.1f} s")

    # -- pieces ---------------------------------------------------------------------------------

    def _catalog(self) -> list[Any]:
        product_model = apps.get_model("licensing", "Product")
        version_model = apps.get_model("licensing", "ProductVersion")
        versions = []
        for sku, name, family, numbers in [*PRODUCTS, UPGRADE_SKU]:
            product, _created = product_model.objects.get_or_create(
                sku=sku, defaults={"name": name, "family": family}
            )
            for age, number in enumerate(reversed(numbers)):
                version, _created = version_model.objects.get_or_create(
                    product=product,
                    version=number,
                    defaults={"released_on": self.today - timedelta(days=300 + 400 * age)},
                )
                if product.sku != UPGRADE_SKU[0]:
                    versions.append(version)
        return versions

    def _organization(
        self, name: str, admin: str, *, members: int, prefix: str = ""
    ) -> Organization:
        registration_model = apps.get_model("licensing", "SupportRegistration")
        field_model = apps.get_model("licensing", "CustomField")
        organization = Organization.objects.create(name=name, country="BR", address="1 Bench St")
        emails = [admin] + [
            f"{prefix or admin.split('@')[0]}-member{n}@bench.example" for n in range(members)
        ]
        for index, email in enumerate(emails):
            user = User.objects.create(email=email, full_name=email.split("@")[0].title())
            user.password = self.password
            user.save(update_fields=["password"])
            Membership.objects.create(
                user=user,
                organization=organization,
                role=Membership.Role.ADMIN if index == 0 else Membership.Role.MEMBER,
            )
        domain = name.lower().replace(" ", "-") + ".example"
        organization.bench_registrations = [  # type: ignore[attr-defined]
            registration_model.objects.create(
                organization=organization,
                company=f"{name} — {site}",
                address=f"{n + 1} Bench Avenue\n{site}",
                country=country,
                primary_name=f"Primary {site}",
                primary_email=f"it-{n}@{domain}",
                primary_phone=f"+55 11 5555-{1000 + n}",
                technical_name=f"Technical {site}",
                technical_email=f"tech-{n}@{domain}",
                technical_phone=f"+55 11 5556-{1000 + n}",
            )
            for n, (site, country) in enumerate(
                [("São Paulo", "BR"), ("Lisbon", "PT"), ("Austin", "US")]
            )
        ]
        organization.bench_fields = [  # type: ignore[attr-defined]
            field_model.objects.create(organization=organization, name="Cost center", position=0),
            field_model.objects.create(
                organization=organization,
                name="Region",
                field_type="choice",
                choices="\n".join(REGIONS),
                position=1,
            ),
        ]
        organization.bench_admin = User.objects.get(email=admin)  # type: ignore[attr-defined]
        return organization

    def _licenses(self, organization: Organization, count: int) -> None:
        license_model = apps.get_model("licensing", "License")
        value_model = apps.get_model("licensing", "CustomFieldValue")
        codes = importlib.import_module("licensing.codes")
        rng, today = self.rng, self.today
        registrations = organization.bench_registrations  # type: ignore[attr-defined]
        cost_center, region = organization.bench_fields  # type: ignore[attr-defined]
        admin = organization.bench_admin  # type: ignore[attr-defined]
        sources = ["serial"] * 14 + ["voucher"] * 3 + ["upgrade"] * 2 + ["ef_drawdown"]
        for chunk in _chunks(range(count), 10_000):
            licenses = []
            for index in chunk:
                version = self.versions[rng.randrange(len(self.versions))]
                start = today - timedelta(days=rng.randrange(30, 1500))
                roll = rng.random()
                status = "active" if roll < 0.9 else ("superseded" if roll < 0.97 else "revoked")
                issued = self.now - timedelta(days=(today - start).days, minutes=index % 1440)
                source = sources[rng.randrange(len(sources))]
                licenses.append(
                    license_model(
                        key=codes.generate_license_key(),
                        owner=organization,
                        version=version,
                        quantity=rng.choice([1, 1, 5, 10, 25, 50, 100, 250, 1000]),
                        maintenance_start=start,
                        maintenance_end=start + timedelta(days=rng.choice([365, 730, 1095])),
                        host_id=HOSTS[index % len(HOSTS)] if index % 7 == 0 else "",
                        status=status,
                        source=source,
                        source_ref=f"BENCH-{organization.pk}-{index}",
                        registration=registrations[index % len(registrations)],
                        issued_at=issued,
                        issued_by=admin,
                        file_issued_at=issued,
                    )
                )
            bulk_load(license_model, licenses)
            bulk_load(
                AuditEvent,
                (
                    AuditEvent(
                        created_at=lic.issued_at,
                        actor=admin,
                        actor_email=admin.email,
                        organization=organization,
                        action="license.issued",
                        object_type="licensing.license",
                        object_id=str(lic.pk),
                        details={
                            "key": lic.key,
                            "source": lic.source,
                            "source_ref": lic.source_ref,
                            "product": lic.version.product.sku,
                            "version": lic.version.version,
                            "quantity": lic.quantity,
                            "maintenance_end": lic.maintenance_end.isoformat(),
                        },
                    )
                    for lic in licenses
                ),
            )
            values = []
            for n, lic in enumerate(licenses):
                values.append(
                    value_model(license=lic, field=cost_center, value=COST_CENTERS[n % 40])
                )
                if n % 2 == 0:
                    values.append(value_model(license=lic, field=region, value=REGIONS[n % 7]))
            bulk_load(value_model, values)

    def _shares(self, owner: Organization, recipient: Organization, *, count: int) -> None:
        share_model = apps.get_model("licensing", "LicenseShare")
        license_model = apps.get_model("licensing", "License")
        user = recipient.bench_admin  # type: ignore[attr-defined]
        licenses = license_model.objects.filter(owner=owner, status="active").order_by("?")
        bulk_load(
            share_model,
            (
                share_model(
                    license=lic,
                    email=user.email,
                    user=user,
                    access="read" if n % 3 else "manage",
                    created_by=owner.bench_admin,  # type: ignore[attr-defined]
                )
                for n, lic in enumerate(licenses[:count])
            ),
        )

    def _upgrades(self, organizations: list[Organization]) -> None:
        """Five current licenses of the old version per organization, then the new one published."""
        version_model = apps.get_model("licensing", "ProductVersion")
        license_model = apps.get_model("licensing", "License")
        codes = importlib.import_module("licensing.codes")
        old, new = version_model.objects.filter(product__sku=UPGRADE_SKU[0]).order_by("released_on")
        new.released_on = self.today - timedelta(days=1)
        new.save(update_fields=["released_on"])
        licenses = [
            license_model(
                key=codes.generate_license_key(),
                owner=organization,
                version=old,
                quantity=quantity,
                maintenance_start=self.today - timedelta(days=200),
                maintenance_end=self.today + timedelta(days=165),
                source="serial",
                source_ref=f"BENCH-UPG-{organization.pk}-{quantity}",
                registration=organization.bench_registrations[0],  # type: ignore[attr-defined]
                issued_by=organization.bench_admin,  # type: ignore[attr-defined]
            )
            for organization in organizations
            for quantity in (5, 10, 20, 50, 100)
        ]
        bulk_load(license_model, licenses)
        bulk_load(
            AuditEvent,
            (
                AuditEvent(
                    organization=lic.owner,
                    actor=lic.issued_by,
                    action="license.issued",
                    object_type="licensing.license",
                    object_id=str(lic.pk),
                    details={"key": lic.key, "source": "serial"},
                )
                for lic in licenses
            ),
        )
        upgrades = importlib.import_module("upgrades.services")
        upgrades.notifications_create(version=new, today=self.today)

    def _serials(self, count: int) -> None:
        if count:
            services = importlib.import_module("licensing.services")
            version = self.versions[0]
            for chunk in _chunks(range(count), 100_000):
                services.serials_create(version=version, count=len(chunk), maintenance_months=12)

    def _vouchers(self, count: int) -> None:
        if count:
            services = importlib.import_module("vouchers.services")
            oem = Organization.objects.create(name="Bench OEM Partner", kind="partner")
            services.voucher_batch_create(
                oem=oem, version=self.versions[1], count=count, label="Bench vouchers"
            )
