from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from .models import VoucherConversion
from .services import voucher_conversion_fail, voucher_conversion_run

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
# A running conversion commits (and touches updated_at) after every chunk; one silent for this
# long lost its worker, or its task never reached the broker.
STALLED_AFTER = timedelta(minutes=5)


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def convert_vouchers(self, conversion_id: str) -> str:  # type: ignore[no-untyped-def]
    """Runs or resumes a conversion. Safe to run twice: finished ones are left as they are."""
    try:
        conversion = voucher_conversion_run(conversion_id=conversion_id)
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
    return str(conversion.status)


@shared_task
def resume_stalled_conversions() -> int:
    """Queues conversions that stopped moving (worker lost, broker down when they were queued)."""
    cutoff = timezone.now() - STALLED_AFTER
    stalled = VoucherConversion.objects.filter(
        status__in=[VoucherConversion.Status.PENDING, VoucherConversion.Status.RUNNING],
        updated_at__lt=cutoff,
    ).values_list("pk", flat=True)[:100]
    count = 0
    for conversion_id in stalled:
        convert_vouchers.delay(str(conversion_id))
        count += 1
    return count
