"""The Celery task: thin, idempotent, resumes stalled conversions, reports failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing.models import License
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import vouchers
from vouchers import services, tasks
from vouchers.models import Voucher, VoucherConversion
from vouchers.services import voucher_conversion_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():  # type: ignore[no-untyped-def]
    return MembershipFactory()


def pending(member, count: int = 3, **kwargs) -> VoucherConversion:  # type: ignore[no-untyped-def]
    conversion, _ = voucher_conversion_create(
        codes=[v.code for v in vouchers(count)],
        organization=member.organization,
        registration=REGISTRATION,
        acting_user=member.user,
        **kwargs,
    )
    return conversion


def test_task_converts_and_reports_progress(member, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "CHUNK_LICENSES", 2)
    conversion = pending(member, 5, combine=False)
    seen: list[tuple[str, int]] = []
    original = services._convert_chunk

    def spy(conv: VoucherConversion, *args: Any) -> Any:
        seen.append((conv.status, conv.processed))
        return original(conv, *args)

    monkeypatch.setattr(services, "_convert_chunk", spy)
    assert tasks.convert_vouchers.delay(str(conversion.pk)).get() == "done"
    assert seen == [("running", 0), ("running", 2), ("running", 4)]
    conversion.refresh_from_db()
    assert conversion.percent == 100 and conversion.finished_at is not None
    assert License.objects.count() == 5


def test_task_twice_converts_once(member) -> None:  # type: ignore[no-untyped-def]
    conversion = pending(member)
    tasks.convert_vouchers.delay(str(conversion.pk))
    tasks.convert_vouchers.delay(str(conversion.pk))
    assert License.objects.count() == 1
    assert Voucher.objects.filter(status=Voucher.Status.REDEEMED).count() == 3


def test_task_for_a_missing_conversion_is_a_no_op() -> None:
    assert tasks.convert_vouchers.delay("6f1f0a39-5d8e-4d0e-9a57-0e8e8f0c1a2b").get() == "missing"


def test_unexpected_error_stops_the_conversion_and_says_so(client, member, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    conversion = pending(member)

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("signing service unavailable")

    monkeypatch.setattr(services, "licenses_issue", broken)
    with pytest.raises(RuntimeError):
        tasks.convert_vouchers.delay(str(conversion.pk))
    conversion.refresh_from_db()
    assert conversion.status == VoucherConversion.Status.FAILED
    assert "signing service unavailable" in conversion.error
    assert Voucher.objects.filter(status=Voucher.Status.OPEN).count() == 3  # rolled back
    client.force_login(member.user)
    page = client.get(reverse("voucher-conversion", kwargs={"pk": conversion.pk}))
    assert "The conversion stopped before the end" in page.content.decode()
    assert "Refresh" not in page


def test_stalled_conversions_are_queued_again(member, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stalled = pending(member)
    fresh = pending(member)
    done = pending(member)
    tasks.convert_vouchers.delay(str(done.pk))
    VoucherConversion.objects.filter(pk__in=[stalled.pk, done.pk]).update(
        updated_at=timezone.now() - timedelta(minutes=10)
    )
    queued: list[str] = []
    monkeypatch.setattr(tasks.convert_vouchers, "delay", lambda pk: queued.append(pk))
    assert tasks.resume_stalled_conversions() == 1
    assert queued == [str(stalled.pk)]
    assert fresh.pk not in queued


def test_the_resume_job_is_scheduled(settings) -> None:  # type: ignore[no-untyped-def]
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "vouchers.tasks.resume_stalled_conversions" in tasks_scheduled
