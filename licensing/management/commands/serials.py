"""`manage.py serials create --product SKU --version V --quantity Q --count N` prints new codes."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from licensing.management.catalog import product_version
from licensing.models import SerialNumber
from licensing.services import LicensingError, serials_create


class Command(BaseCommand):
    help = "Create serial numbers for a product version and print one code per line."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Generate new serial numbers.")
        create.add_argument("--product", required=True, help="Product SKU.")
        create.add_argument("--version", required=True, help="Product version, e.g. 14.3.")
        create.add_argument("--quantity", type=int, default=1, help="Seats per serial.")
        create.add_argument("--count", type=int, required=True, help="How many serials.")
        create.add_argument("--kind", choices=list(SerialNumber.Kind.values), default="new")
        create.add_argument("--maintenance-months", type=int, default=12)
        create.add_argument(
            "--expires",
            type=date.fromisoformat,
            default=None,
            help="The last day it can be redeemed (YYYY-MM-DD).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        version = product_version(options["product"], options["version"])
        try:
            serials = serials_create(
                version=version,
                count=options["count"],
                kind=options["kind"],
                quantity=options["quantity"],
                maintenance_months=options["maintenance_months"],
                expires_on=options["expires"],
            )
        except LicensingError as exc:
            raise CommandError(str(exc)) from None
        for serial in serials:
            self.stdout.write(serial.code)
