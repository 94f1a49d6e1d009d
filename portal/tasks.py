from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from .services import (
    gin_pending_lists_merge,
    outbound_email_send,
    outbound_emails_send,
    outbox_due,
)

logger = logging.getLogger(__name__)


# No Celery retries: the backoff lives on the row (next_attempt_at) and the relay brings the
# email back when it is due, so retries and relay never spend attempts on top of each other.
@shared_task(acks_late=True)
def send_outbound_email(email_id: str) -> str:
    """Sends one outbox email if it is due (tasks may run twice: the claim makes it once)."""
    return outbound_email_send(email_id=email_id)


@shared_task(acks_late=True)
def send_outbound_emails(email_ids: list[str], compose: bool = False) -> dict[str, int]:
    """Sends a batch of outbox emails over one connection (each claimed once, as above);
    with `compose`, writes those still to be written first (portal.emails.queue_email_later)."""
    return outbound_emails_send(email_ids=email_ids, compose=compose)


@shared_task(acks_late=True)
def relay_outbox() -> int:
    """Queues the outbox emails that are due: never handed over, backed off, or orphaned."""
    due = outbox_due(now=timezone.now())
    size = settings.OUTBOX_BATCH_SIZE
    for start in range(0, len(due), size):
        # Some may be still to write (queue_email_later): one query more for the batch.
        send_outbound_emails.delay(
            [str(email_id) for email_id in due[start : start + size]], compose=True
        )
    return len(due)


@shared_task
def refresh_delegations() -> dict[str, int]:
    """Starts delegations whose first day came and expires those past their end (emailed)."""
    from .services import delegations_refresh

    return delegations_refresh()


@shared_task
def merge_search_indexes() -> int:
    """Merges the search indexes' pending lists (portal.services.gin_pending_lists_merge)."""
    return gin_pending_lists_merge()
