"""`manage.py ef_contracts create --customer ACCOUNT --product SKU --version V --committed N`
prints the new contract's number; `add-line` adds a product to an existing contract."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from enterprise_flex.models import EFContract, EFContractUser
from enterprise_flex.services import EFError, contract_create, contract_user_set, line_add
from licensing.management.catalog import product_version
from licensing.models import add_months
from portal.models import Organization, User


def _decimal(raw: str) -> Decimal:
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise CommandError(f"{raw!r} is not an amount, e.g. 12.50.") from None


def _line_arguments(parser: CommandParser) -> None:
    parser.add_argument("--product", required=True, help="Product SKU.")
    parser.add_argument("--version", required=True, help="Product version, e.g. 15.0.")
    parser.add_argument("--committed", type=int, required=True, help="Committed quantity.")
    parser.add_argument("--overage", action="store_true", help="Allow drawdowns beyond it.")
    parser.add_argument("--unit-value", default="0", help="Value of one unit, e.g. 42.00.")
    parser.add_argument("--currency", default="USD", help="ISO currency code.")


class Command(BaseCommand):
    help = "Create Enterprise Flexible contracts (prints the contract number) or add lines."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="A new contract with one line and its Main site.")
        create.add_argument("--customer", required=True, help="Customer account number.")
        _line_arguments(create)
        create.add_argument("--years", type=int, default=3, help="Deployment period in years.")
        create.add_argument(
            "--start",
            type=date.fromisoformat,
            default=None,
            help="First day of the deployment period (YYYY-MM-DD); default today.",
        )
        create.add_argument(
            "--super-user",
            default="",
            help="Email of an existing user of the customer: the contract's super user.",
        )
        add_line = sub.add_parser("add-line", help="Add a product to an existing contract.")
        add_line.add_argument("--contract", required=True, help="Contract number, EF-…")
        _line_arguments(add_line)

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        version = product_version(options["product"], options["version"])
        terms = {
            "version": version,
            "committed_quantity": options["committed"],
            "overage_allowed": options["overage"],
            "unit_value": _decimal(options["unit_value"]),
            "currency": options["currency"],
            "actor": None,
        }
        try:
            if options["action"] == "add-line":
                contract = EFContract.objects.filter(number=options["contract"]).first()
                if contract is None:
                    raise CommandError(f"No contract {options['contract']}.")
                line_add(contract=contract, **terms)
            else:
                contract = self._create(options)
                line_add(contract=contract, **terms)
        except EFError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(contract.number)

    def _create(self, options: dict[str, Any]) -> EFContract:
        customer = Organization.objects.filter(account_number=options["customer"]).first()
        if customer is None:
            raise CommandError(f"No organization with account number {options['customer']}.")
        if not 1 <= options["years"] <= 10:
            raise CommandError("--years must be from 1 to 10.")
        super_user = None
        if options["super_user"]:
            super_user = User.objects.filter(email__iexact=options["super_user"]).first()
            if super_user is None:
                raise CommandError(f"No user {options['super_user']}.")
        start = options["start"] or date.today()
        contract = contract_create(
            organization=customer,
            period_start=start,
            period_end=add_months(start, 12 * options["years"]) - timedelta(days=1),
            actor=None,
        )
        if super_user is not None:
            contract_user_set(
                contract=contract, user=super_user, level=EFContractUser.Level.SUPER, actor=None
            )
        return contract
