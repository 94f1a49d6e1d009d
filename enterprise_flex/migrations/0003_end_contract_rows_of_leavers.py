"""Ends the contract rows of people no longer in the contract's organization.

Removing a member from an organization left their contract rows: they counted for nothing while
the person was out, and came back to life, level and all, when the person was invited back to
the organization. Removals now end them (enterprise_flex.services.contract_access_end); this
ends the ones earlier removals left, audited as those are (ef.user_removed, reason
left_organization), with no actor: nobody in particular removed them.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.models import Exists, OuterRef


def end_rows_of_leavers(apps: Any, schema_editor: Any) -> None:
    contract_user = apps.get_model("enterprise_flex", "EFContractUser")
    membership = apps.get_model("portal", "Membership")
    audit_event = apps.get_model("portal", "AuditEvent")
    members = membership.objects.filter(
        user_id=OuterRef("user_id"), organization_id=OuterRef("contract__organization_id")
    )
    leftovers = list(
        contract_user.objects.filter(~Exists(members))
        .select_related("contract", "user")
        .order_by("pk")
    )
    if not leftovers:
        return
    audit_event.objects.bulk_create(
        [
            audit_event(
                action="ef.user_removed",
                organization_id=row.contract.organization_id,
                details={
                    "contract": row.contract.number,
                    "email": row.user.email,
                    "level": row.level,
                    "reason": "left_organization",
                },
            )
            for row in leftovers
        ]
    )
    contract_user.objects.filter(pk__in=[row.pk for row in leftovers]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("enterprise_flex", "0002_countries_as_codes"),
        ("portal", "0007_slimmer_indexes"),
    ]

    operations = [migrations.RunPython(end_rows_of_leavers, migrations.RunPython.noop)]
