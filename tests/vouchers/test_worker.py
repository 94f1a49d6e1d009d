"""A large submission through a real Celery worker on Redis: the request returns at once, the
progress page follows the worker, and the result page and the email arrive when it is done."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from licensing.models import License
from portal.celery import app as celery_app
from portal.models import OutboundEmail
from tests.conftest import celery_conf, redis_url
from tests.licensing.factories import REGISTRATION
from tests.portal.factories import MembershipFactory
from tests.vouchers.factories import vouchers
from tests.vouchers.wizard import confirm_token, walk
from tests.vouchers.zips import assert_zip_of
from vouchers.models import VoucherConversion
from vouchers.views import RESULT_PAGE_SIZE
from vouchers.wizard import INLINE_MAX

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not redis_url(), reason="needs Redis: set REDIS_URL=redis://… (CI does)"),
]


def test_a_real_worker_converts_a_large_submission() -> None:
    from celery.contrib.testing.worker import start_worker

    celery_conf(task_always_eager=False)
    assert celery_app.conf.broker_url.startswith("redis://")
    count = INLINE_MAX * 4
    codes = [v.code for v in vouchers(count, quantity_per_voucher=1)]
    client = Client()
    # The technical contact: one email (tests/vouchers/test_conversion_email_links.py has
    # those of a contact who is no member).
    membership = MembershipFactory(user__password=None, user__email=REGISTRATION["technical_email"])
    client.force_login(membership.user)
    walk(client, "\n".join(codes), combine=False, confirm=False)
    token = confirm_token(client)

    started = time.monotonic()
    response = client.post(reverse("voucher-center-confirm"), {"token": token})
    assert time.monotonic() - started < 5  # the request only records and queues
    assert response.status_code == 302
    url = response["Location"]
    first = client.get(url)
    assert first["Refresh"] == "2" and 'role="progressbar"' in first.content.decode()

    seen: set[int] = set()
    with start_worker(
        celery_app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10
    ):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            page = client.get(url)
            if "Refresh" not in page:
                break
            seen.add(VoucherConversion.objects.get().processed)
            time.sleep(0.2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not mail.outbox:
            time.sleep(0.1)
    conversion = VoucherConversion.objects.get()
    assert conversion.status == VoucherConversion.Status.DONE, conversion.error
    assert License.objects.count() == count
    # The result page lists them a page at a time (vouchers.views.RESULT_PAGE_SIZE).
    pages = "".join(
        client.get(url, {"page": number}).content.decode()
        for number in range(1, count // RESULT_PAGE_SIZE + 2)
    )
    assert all(lic.key in pages for lic in License.objects.all())
    outbox_row = OutboundEmail.objects.get()
    assert outbox_row.status == OutboundEmail.Status.SENT
    # The row named the zip; the worker built it from the committed licenses when it sent it.
    assert outbox_row.attachments[0]["ref"] == str(conversion.pk)
    assert "content" not in outbox_row.attachments[0]
    (email,) = mail.outbox
    ((filename, content, _mimetype),) = email.attachments
    assert filename == "licenses.zip"
    assert_zip_of(content, conversion)
    assert seen  # the progress page was shown while the worker ran
