from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from .services import reminders_send


# A retry is safe: each reminder is recorded once (a unique constraint), so a rerun sends only
# what is left. OperationalError covers a dropped connection or a lock the database refused.
@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def send_ef_reminders() -> int:
    """Emails today's Enterprise Flexible reminders to super users; returns how many."""
    return reminders_send(today=timezone.localdate())
