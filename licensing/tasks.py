from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from .services.reminders import maintenance_reminders_send


# A retry is safe: the service records each reminder once, so a rerun sends only what is left.
# OperationalError covers a lock the database refused (SQLite's "database is locked" when two
# runs overlap) and a dropped connection. Acknowledged on receipt, with a long time limit: the
# daily run may outlast the broker's short visibility timeout, and tomorrow's catches up.
@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    acks_late=False,
    soft_time_limit=1800,
    time_limit=1900,
)
def send_maintenance_reminders() -> int:
    """Emails today's maintenance reminder digests; returns how many were queued."""
    return maintenance_reminders_send(today=timezone.localdate())
