"""Demo data for the Voucher center (run after seed_demo; safe to run again)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from licensing.models import ProductVersion
from portal.models import Membership, Organization, User
from vouchers.models import Voucher, VoucherBatch
from vouchers.services import voucher_batch_create

DEMO_PASSWORD = "demo-licensing-2026"  # noqa: S105 - printed for the local demo only


class Command(BaseCommand):
    help = "Create a demo OEM partner with a batch of vouchers, and print a few open codes."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        version = ProductVersion.objects.filter(product__sku="WSS-GW", version="7.2").first()
        if version is None:
            raise CommandError("Run `manage.py seed_demo` first.")
        oem, _created = Organization.objects.get_or_create(
            name="Hardware OEM Inc", defaults={"kind": Organization.Kind.PARTNER}
        )
        user = User.objects.filter(email="oem@hardware.example").first()
        if user is None:
            user = User.objects.create_user(
                email="oem@hardware.example", password=DEMO_PASSWORD, full_name="Olga OEM"
            )
        Membership.objects.get_or_create(
            user=user, organization=oem, defaults={"role": Membership.Role.ADMIN}
        )
        if not VoucherBatch.objects.filter(oem=oem).exists():
            voucher_batch_create(
                oem=oem, version=version, count=20, quantity_per_voucher=5, label="Demo appliances"
            )
        codes = Voucher.objects.filter(batch__oem=oem, status="open").order_by("id")
        self.stdout.write(f"  oem@hardware.example     admin of {oem.name} (OEM partner)")
        self.stdout.write("Unredeemed demo voucher codes (Voucher center):")
        for voucher in codes[:3]:
            self.stdout.write(f"  {voucher.code}")
