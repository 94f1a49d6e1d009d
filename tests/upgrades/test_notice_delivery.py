"""A version's notices are delivered in batches: a handful of statements whatever the number of
organizations, and a broker that is down delays them, never loses them."""

from __future__ import annotations

import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone, translation
from kombu.exceptions import OperationalError as BrokerDown

from portal.celery import app as celery_app
from portal.models import OutboundEmail
from portal.services import OUTBOX_HANDOFF_GRACE
from portal.tasks import relay_outbox, send_outbound_emails
from tests.conftest import celery_conf, redis_url
from tests.portal.factories import OrganizationFactory, UserFactory
from tests.upgrades.factories import catalog, licensed
from upgrades.models import UpgradeNotice
from upgrades.services import notifications_create, upgrade_notices_send, version_publish

pytestmark = pytest.mark.django_db


def _eligible(organizations: int):  # type: ignore[no-untyped-def]
    old, new = catalog()
    for _ in range(organizations):
        org = OrganizationFactory()
        licensed(org, old)
        licensed(org, old)
    notifications_create(version=new, today=timezone.localdate())
    return new


@pytest.mark.parametrize("organizations", [3, 30])
def test_notices_are_queued_and_delivered_in_statements_that_do_not_grow_per_organization(
    organizations: int, django_assert_max_num_queries, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    new = _eligible(organizations)
    # Three reads, the notices' and the outbox rows' INSERTs (+ the test's savepoint pair),
    # then the batch's claim and sent mark (SQLite's claim reads first: a few more).
    with (
        django_assert_max_num_queries(13),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert upgrade_notices_send(version=new) == organizations
    assert len(mail.outbox) == organizations
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_publication_while_the_broker_is_down_commits_and_its_notices_go_out_later(
    django_capture_on_commit_callbacks, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    for _ in range(3):
        licensed(OrganizationFactory(), old)
    from upgrades import tasks as upgrade_tasks

    down = BrokerDown("broker down")
    with (
        mock.patch.object(send_outbound_emails, "delay", side_effect=down),
        mock.patch.object(upgrade_tasks.publish_version, "delay", side_effect=down),
        django_capture_on_commit_callbacks(execute=True),
    ):
        # The publication commits; its task could not be queued (the daily job's to catch up).
        assert version_publish(version=new, actor=UserFactory(is_staff=True)) is True
        upgrade_tasks.refresh_upgrade_eligibility()  # the safety net, with the broker still down
    assert UpgradeNotice.objects.count() == 3 and mail.outbox == []
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {"pending"}

    later = timezone.now() + OUTBOX_HANDOFF_GRACE + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert relay_outbox() == 3  # the broker is back: one batch
    assert len(mail.outbox) == 3
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_a_notice_reads_in_its_language_with_every_line_escaped(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    old, new = catalog()
    old.product.name = "Shield & <Co>"
    old.product.save()
    org = OrganizationFactory()
    first = licensed(org, old, quantity=3)
    licensed(org, old, quantity=4, registration=first.registration)
    notifications_create(version=new, today=timezone.localdate())
    with translation.override("pt-br"), django_capture_on_commit_callbacks(execute=True):
        assert upgrade_notices_send(version=new) == 1
    (email,) = mail.outbox
    expires_on = UpgradeNotice.objects.get().notification.expires_on
    assert "Shield & <Co> 15.0 foi lançado." in email.body
    assert f"- Shield & <Co> 14.3 → 15.0, quantidade 3, licença {first.key}\n" in email.body
    assert f"Faça o upgrade até {expires_on:%d/%m/%Y}." in email.body
    html = email.alternatives[0][0]
    assert "<Co>" not in html and html.count("<li>Shield &amp; &lt;Co&gt; 14.3 → 15.0, ") == 2
    assert f"<p>Faça o upgrade até {expires_on:%d/%m/%Y}.</p>" in html


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not redis_url(), reason="needs Redis: set REDIS_URL=redis://… (CI does)")
def test_a_real_worker_delivers_every_notice_through_redis_in_batches(settings) -> None:  # type: ignore[no-untyped-def]
    from celery.contrib.testing.worker import start_worker

    settings.OUTBOX_BATCH_SIZE = 4
    celery_conf(task_always_eager=False)
    new = _eligible(10)
    with start_worker(
        celery_app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=10
    ):
        assert upgrade_notices_send(version=new) == 10
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not OutboundEmail.objects.exclude(status=OutboundEmail.Status.SENT).exists():
                break
            time.sleep(0.1)
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert len(mail.outbox) == 10
