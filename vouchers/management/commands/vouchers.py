"""`manage.py vouchers create --oem ACCOUNT --product SKU --version V --count N` prints codes."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from licensing.management.catalog import product_version
from portal.models import Organization
from vouchers.services import VoucherError, voucher_batch_create


class Command(BaseCommand):
    help = "Create a batch of vouchers for an OEM partner and print one code per line."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Generate a new batch of vouchers.")
        create.add_argument("--oem", required=True, help="The partner's account number.")
        create.add_argument("--product", required=True, help="Product SKU.")
        create.add_argument("--version", required=True, help="Product version, e.g. 14.3.")
        create.add_argument("--count", type=int, required=True, help="How many vouchers.")
        create.add_argument("--quantity", type=int, default=1, help="Seats per voucher.")
        create.add_argument("--maintenance-months", type=int, default=12)
        create.add_argument(
            "--expires",
            type=date.fromisoformat,
            default=None,
            help="Convert before this date (YYYY-MM-DD).",
        )
        create.add_argument("--label", default="", help="A note for staff, e.g. the PO number.")

    def handle(self, *args: Any, **options: Any) -> None:
        oem = Organization.objects.filter(account_number=options["oem"]).first()
        if oem is None:
            raise CommandError(f"No organization with account number {options['oem']}.")
        version = product_version(options["product"], options["version"])
        try:
            batch = voucher_batch_create(
                oem=oem,
                version=version,
                count=options["count"],
                quantity_per_voucher=options["quantity"],
                maintenance_months=options["maintenance_months"],
                expires_on=options["expires"],
                label=options["label"],
            )
        except VoucherError as exc:
            raise CommandError(str(exc)) from None
        for code in batch.vouchers.order_by("pk").values_list("code", flat=True).iterator():
            self.stdout.write(code)
