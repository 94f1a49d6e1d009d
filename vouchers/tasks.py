from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from portal.broker import enqueue

from .models import VoucherConversion
from .services import voucher_conversion_fail, voucher_conversion_run

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
# One task converts for about this long, then hands the rest to a fresh task: every message is
# acknowledged well within the broker's visibility timeout (PORTAL_VISIBILITY_TIMEOUT), which
# can therefore be short without a healthy long conversion being delivered twice.
SLICE_SECONDS = 20.0


def stalled_after() -> timedelta:
    """A running conversion commits (and touches updated_at) after every chunk, every few
    seconds; one silent for this long lost its worker, or its task never reached the broker."""
    return timedelta(seconds=settings.PORTAL_STALLED_AFTER)


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def convert_vouchers(self, conversion_id: str) -> str:  # type: ignore[no-untyped-def]
    """Runs or resumes a conversion. Safe to run twice: finished ones are left as they are."""
    try:
        conversion = voucher_conversion_run(
            conversion_id=conversion_id, until=time.monotonic() + SLICE_SECONDS
        )
    except SoftTimeLimitExceeded:
        # One step outlived the time limit: its transaction rolled back; start it afresh.
        _continue(conversion_id)
        return "continued"
    except (OperationalError, InterfaceError) as exc:
        # The database went away mid-way: committed chunks stay, the next try resumes after them.
        if self.request.retries < MAX_RETRIES:
            raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc
        voucher_conversion_fail(conversion_id=conversion_id, error=repr(exc))
        raise
    except VoucherConversion.DoesNotExist:
        logger.warning("Voucher conversion %s does not exist", conversion_id)
        return "missing"
    except Exception as exc:
        logger.exception("Voucher conversion %s failed", conversion_id)
        voucher_conversion_fail(conversion_id=conversion_id, error=repr(exc))
        raise
    if not conversion.is_finished:
        _continue(conversion_id)
    return str(conversion.status)


def _continue(conversion_id: str) -> None:
    # With the broker down, the resume job continues it.
    enqueue(convert_vouchers, conversion_id)


@shared_task
def resume_stalled_conversions() -> int:
    """Queues conversions that stopped moving (worker lost, broker down when they were queued)."""
    cutoff = timezone.now() - stalled_after()
    stalled = VoucherConversion.objects.filter(
        status__in=[VoucherConversion.Status.PENDING, VoucherConversion.Status.RUNNING],
        updated_at__lt=cutoff,
    ).values_list("pk", flat=True)[:100]
    count = 0
    for conversion_id in stalled:
        convert_vouchers.delay(str(conversion_id))
        count += 1
    return count
