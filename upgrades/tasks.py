from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from licensing.models import ProductVersion

from .services import notifications_create, upgrade_notices_send


# Acknowledged on receipt, with a long time limit: a publication can outlast the broker's short
# visibility timeout, and a run lost with its worker is caught up by the daily eligibility job.
@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    acks_late=False,
    soft_time_limit=1800,
    time_limit=1900,
)
def publish_version(version_id: int) -> dict[str, int]:
    """Creates a published version's notifications, then queues their notices (idempotent)."""
    version = ProductVersion.objects.select_related("product").get(pk=version_id)
    created = notifications_create(version=version, today=timezone.localdate())
    notices = upgrade_notices_send(version=version)
    return {"notifications": created.notifications, "lines": created.lines, "notices": notices}


@shared_task(acks_late=False, soft_time_limit=1800, time_limit=1900)
def refresh_upgrade_eligibility() -> int:
    """Daily: licenses whose maintenance was renewed since a publication become eligible."""
    count = 0
    today = timezone.localdate()
    for version in ProductVersion.objects.filter(
        published_at__isnull=False, released_on__gte=today - timedelta(days=365)
    ).select_related("product"):
        created = notifications_create(version=version, today=today)
        if created.lines:
            upgrade_notices_send(version=version)
        count += created.lines
    return count
