"""Idempotent demo: one Enterprise Flexible contract for Acme (make run calls it)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from enterprise_flex.models import EFContract, EFContractUser
from enterprise_flex.services import contract_create, contract_user_set, line_add
from licensing.management.catalog import product_version
from licensing.models import add_months
from portal.models import Organization, User

CUSTOMER = "Acme Manufacturing"
SUPER_USER = "alice@acme.example"
CONTRACT_USER = "bob@acme.example"
LINES = [
    # sku, version, committed, unit value, overage allowed
    ("SEP-ENT", "15.0", 500, Decimal("38.00"), True),
    ("WSS-GW", "7.2", 200, Decimal("55.00"), False),
    ("DLP-NET", "16.0", 10, Decimal("1200.00"), False),
]


class Command(BaseCommand):
    help = "Create Acme's demo Enterprise Flexible contract (safe to run again)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        acme = Organization.objects.filter(name=CUSTOMER).first()
        super_user = User.objects.filter(email=SUPER_USER).first()
        contract_user = User.objects.filter(email=CONTRACT_USER).first()
        if acme is None or super_user is None or contract_user is None:
            raise CommandError("Run `manage.py seed_demo` first: it creates Acme and its logins.")
        contract = EFContract.objects.filter(organization=acme).order_by("pk").first()
        if contract is None:
            # Started ten months ago: year 1 ends within 60 days, so its deployment report can
            # be submitted and the 60-day reminder is due.
            start = timezone.localdate() - timedelta(days=310)
            contract = contract_create(
                organization=acme,
                period_start=start,
                period_end=add_months(start, 36) - timedelta(days=1),
                actor=None,
                super_user=super_user,
            )
            contract_user_set(
                contract=contract,
                user=contract_user,
                level=EFContractUser.Level.CONTRACT,
                actor=None,
            )
            for sku, version, committed, value, overage in LINES:
                line_add(
                    contract=contract,
                    version=product_version(sku, version),
                    committed_quantity=committed,
                    unit_value=value,
                    overage_allowed=overage,
                    actor=None,
                )
        self.stdout.write("")
        self.stdout.write(
            f"Enterprise Flexible contract {contract.number} for {CUSTOMER}: "
            f"{SUPER_USER} is its super user, {CONTRACT_USER} a contract user."
        )
