"""Idempotent demo data: a catalog, two customer organizations with logins, open serials."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from licensing.models import Product, ProductVersion, SerialNumber
from licensing.signing import get_signing_key, key_id
from portal.models import Membership, Organization, User

DEMO_PASSWORD = "demo-licensing-2026"  # noqa: S105 - printed for the local demo only

PRODUCTS = [
    ("SEP-ENT", "Endpoint Protection", "Endpoint", False, ["14.3", "15.0"]),
    ("DLP-NET", "Data Loss Prevention Network Monitor", "Information Protection", True, ["16.0"]),
    ("WSS-GW", "Web Security Gateway", "Network", False, ["7.2"]),
]

USERS = [
    ("admin@example.com", "Ada Admin", None, None, True),
    ("alice@acme.example", "Alice Andrade", "Acme Manufacturing", Membership.Role.ADMIN, False),
    ("bob@acme.example", "Bob Barros", "Acme Manufacturing", Membership.Role.MEMBER, False),
    ("carol@globex.example", "Carol Costa", "Globex Logistics", Membership.Role.ADMIN, False),
]


class Command(BaseCommand):
    help = "Create demo products, organizations, users and serial numbers (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--serials", type=int, default=5, help="Keep at least this many open serials per kind."
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        versions: dict[str, ProductVersion] = {}
        for sku, name, family, node_locked, version_names in PRODUCTS:
            product, _ = Product.objects.get_or_create(
                sku=sku, defaults={"name": name, "family": family, "node_locked": node_locked}
            )
            for index, version_name in enumerate(version_names):
                versions[f"{sku} {version_name}"], _ = ProductVersion.objects.get_or_create(
                    product=product,
                    version=version_name,
                    defaults={"released_on": date(2025 + index, 3, 1)},
                )
        organizations: dict[str, Organization] = {}
        for email, full_name, org_name, role, staff in USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(
                    email=email,
                    password=DEMO_PASSWORD,
                    full_name=full_name,
                    is_staff=staff,
                    is_superuser=staff,
                )
            if org_name:
                organization = (
                    organizations.get(org_name)
                    or Organization.objects.filter(name=org_name).first()
                )
                if organization is None:
                    organization = Organization.objects.create(
                        name=org_name, address="Av. Paulista 1000\nSão Paulo - SP", country="BR"
                    )
                organizations[org_name] = organization
                Membership.objects.get_or_create(
                    user=user, organization=organization, defaults={"role": role}
                )
        wanted = options["serials"]
        plans = [
            ("SEP-ENT 14.3", SerialNumber.Kind.NEW, 50),
            ("SEP-ENT 15.0", SerialNumber.Kind.UPGRADE, 50),
            ("SEP-ENT 14.3", SerialNumber.Kind.RENEWAL, 50),
            ("DLP-NET 16.0", SerialNumber.Kind.NEW, 1),
            ("WSS-GW 7.2", SerialNumber.Kind.NEW, 250),
        ]
        for version_key, kind, quantity in plans:
            version = versions[version_key]
            open_serials = SerialNumber.objects.filter(version=version, kind=kind, status="open")
            missing = max(0, wanted - open_serials.count())
            SerialNumber.objects.bulk_create(
                [
                    SerialNumber(version=version, kind=kind, quantity=quantity)
                    for _ in range(missing)
                ]
            )
        get_signing_key()  # creates var/license-signing-key.pem on the first run
        self._print_summary(versions, key_id())

    def _print_summary(self, versions: dict[str, ProductVersion], kid: str) -> None:
        out = self.stdout
        out.write("")
        out.write(f"Demo logins (password for all: {DEMO_PASSWORD})")
        for email, _full_name, org_name, role, staff in USERS:
            what = "staff, Django admin at /admin/" if staff else f"{role} of {org_name}"
            out.write(f"  {email:<24} {what}")
        out.write("")
        out.write("Unredeemed demo serial numbers:")
        shown: dict[tuple[str, str], int] = {}
        for serial in (
            SerialNumber.objects.filter(status="open")
            .select_related("version__product")
            .order_by("created_at")
        ):
            group = (str(serial.version), serial.kind)
            if shown.get(group, 0) >= 2:
                continue
            shown[group] = shown.get(group, 0) + 1
            out.write(
                f"  {serial.code}   {serial.version} · {serial.get_kind_display()} "
                f"· quantity {serial.quantity}"
            )
        out.write("")
        out.write(f"License signing key id: {kid}")
