"""Demo channel partner with a delegating customer (run after seed_demo; safe to run again)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.models import Delegation, Membership, Organization, User
from portal.policy import Scope

DEMO_PASSWORD = "demo-licensing-2026"  # noqa: S105 - printed for the local demo only
PARTNER_NAME = "Prime Channel Partners"
PARTNER_LOGIN = "pedro@partner.example"
DELEGATING_CUSTOMER = "Globex Logistics"


class Command(BaseCommand):
    help = "Create a demo channel partner that Globex Logistics delegated to, with a login."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        customer = Organization.objects.filter(name=DELEGATING_CUSTOMER).first()
        if customer is None:
            raise CommandError("Run `manage.py seed_demo` first.")
        partner, _created = Organization.objects.get_or_create(
            name=PARTNER_NAME,
            defaults={
                "kind": Organization.Kind.PARTNER,
                "address": "Rua Funchal 418\nSão Paulo - SP",
                "country": "BR",
            },
        )
        user = User.objects.filter(email=PARTNER_LOGIN).first()
        if user is None:
            user = User.objects.create_user(
                email=PARTNER_LOGIN, password=DEMO_PASSWORD, full_name="Pedro Parceiro"
            )
        Membership.objects.get_or_create(
            user=user, organization=partner, defaults={"role": Membership.Role.ADMIN}
        )
        if not Delegation.objects.filter(
            customer=customer, partner=partner, status__in=Delegation.LIVE
        ).exists():
            Delegation.objects.create(
                customer=customer,
                partner=partner,
                scopes=[scope.value for scope in Scope],
                granted_by=User.objects.filter(
                    memberships__organization=customer, memberships__role=Membership.Role.ADMIN
                ).first(),
            )
        self.stdout.write("")
        self.stdout.write(
            f"Channel partner: {PARTNER_LOGIN} (admin of {PARTNER_NAME}, account "
            f"{partner.account_number}) acts for {DELEGATING_CUSTOMER}: Customers → "
            "Act for this customer."
        )
