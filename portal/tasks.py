from __future__ import annotations

import logging
import smtplib
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from .emails import deliver
from .models import OutboundEmail

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8


@shared_task(
    bind=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=MAX_ATTEMPTS,
)
def send_outbound_email(self, email_id: str) -> str:  # type: ignore[no-untyped-def]
    """Sends one outbox email; a no-op when it was already sent (tasks may run twice)."""
    with transaction.atomic():
        email = (
            OutboundEmail.objects.select_for_update(skip_locked=True)
            .filter(pk=email_id, status=OutboundEmail.Status.PENDING)
            .first()
        )
        if email is None:
            return "skipped"
        try:
            deliver(email)
        except Exception as exc:
            error = exc
        else:
            return "sent"
    # Recorded outside the transaction above so the failure survives the retry's exception.
    attempts = email.attempts + 1
    OutboundEmail.objects.filter(pk=email.pk).update(
        attempts=attempts,
        last_error=repr(error)[:2000],
        status=OutboundEmail.Status.FAILED if attempts >= MAX_ATTEMPTS else email.status,
    )
    raise error


@shared_task
def relay_outbox() -> int:
    """Queues outbox emails still pending a minute after they were written."""
    cutoff = timezone.now() - timedelta(minutes=1)
    pending = OutboundEmail.objects.filter(
        status=OutboundEmail.Status.PENDING, created_at__lt=cutoff, attempts__lt=MAX_ATTEMPTS
    ).values_list("pk", flat=True)[:500]
    count = 0
    for email_id in pending:
        send_outbound_email.delay(str(email_id))
        count += 1
    return count


@shared_task
def refresh_delegations() -> dict[str, int]:
    """Starts delegations whose first day came and expires those past their end (emailed)."""
    from .services import delegations_refresh

    return delegations_refresh()
