"""Demo data for version upgrades (run after seed_demo; safe to run again).

Gives Acme Manufacturing a licensed, maintained Endpoint Protection 14.3, publishes 15.0 and
prints Acme's notification ID.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from licensing.models import License, ProductVersion, SupportRegistration
from licensing.services import IssueSource, license_issue
from portal.models import Organization
from upgrades.models import UpgradeNotification
from upgrades.services import version_publish

DEMO_REF = "DEMO-SEED"


class Command(BaseCommand):
    help = "Publish a demo version so that Acme Manufacturing has an upgrade notification."

    def handle(self, *args: Any, **options: Any) -> None:
        acme = Organization.objects.filter(name="Acme Manufacturing").first()
        old = ProductVersion.objects.filter(product__sku="SEP-ENT", version="14.3").first()
        new = ProductVersion.objects.filter(product__sku="SEP-ENT", version="15.0").first()
        if acme is None or old is None or new is None:
            raise CommandError("Run `manage.py seed_demo` first.")
        with transaction.atomic():
            if not License.objects.filter(owner=acme, source_ref=DEMO_REF).exists():
                today = timezone.localdate()
                registration = SupportRegistration.objects.create(
                    organization=acme,
                    company=acme.name,
                    address=acme.address,
                    country=acme.country,
                    primary_name="Alice Andrade",
                    primary_email="alice@acme.example",
                    primary_phone="+55 11 5555-0100",
                    technical_name="Alice Andrade",
                    technical_email="alice@acme.example",
                    technical_phone="+55 11 5555-0100",
                )
                license_issue(
                    source=IssueSource(
                        kind=License.Source.SERIAL,
                        ref=DEMO_REF,
                        version=old,
                        quantity=25,
                        maintenance_start=today - timedelta(days=300),
                        maintenance_end=today + timedelta(days=430),
                    ),
                    owner=acme,
                    registration=registration,
                    acting_user=None,
                    notify=False,
                )
            version_publish(version=new, actor=None)
        notification = UpgradeNotification.objects.filter(
            organization=acme, target_version=new
        ).first()
        if notification is not None:
            self.stdout.write(
                f"Demo upgrade notification for Acme Manufacturing ({new}): {notification.code}"
            )
