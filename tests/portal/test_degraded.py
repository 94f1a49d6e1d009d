"""Redis down, or only the broker down: every page answers within 2 seconds with success or a
translated "temporarily unavailable", and nothing is committed without the user being told.

"Down" is first a closed port (connections refused), then a real redis-server the test starts
on a free port and stops in the middle of the test. bench/bench_degraded.py prints the figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from licensing.codes import generate_code
from licensing.models import License
from portal.celery import app as celery_app
from portal.models import OutboundEmail, User
from portal.settings import redis_cache
from tests.conftest import celery_conf, postgres_only
from tests.licensing.factories import LicenseFactory, SerialNumberFactory
from tests.licensing.wizard import post_step, walk
from tests.portal.factories import PASSWORD, MembershipFactory
from tests.processes import (
    ROOT,
    RedisServer,
    closed_port_url,
    portal_env,
    redis_server_available,
)
from tests.vouchers.factories import vouchers
from tests.vouchers.wizard import confirm_token, submit_codes
from tests.vouchers.wizard import walk as voucher_walk
from vouchers.models import VoucherConversion
from vouchers.wizard import INLINE_MAX

pytestmark = pytest.mark.django_db

BUDGET = 2.0  # seconds a page may take with a dependency down


def _point_broker_at(url: str) -> None:
    celery_conf(broker_url=url, task_always_eager=False)
    # The app caches its pools (kombu keeps one per URL): look them up again for the new URL.
    # Not closed: kombu shares them with every later test that uses that URL.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker_down() -> Iterator[str]:
    url = closed_port_url()
    _point_broker_at(url)
    yield url
    _point_broker_at(django_settings.CELERY_BROKER_URL)


@pytest.fixture
def redis_down(settings, broker_down: str) -> str:  # type: ignore[no-untyped-def]
    settings.CACHES = {"default": redis_cache(broker_down)}
    return broker_down


def timed(call: Callable[[], Any]) -> Any:
    started = time.monotonic()
    response = call()
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET, f"{elapsed:.2f} s"
    assert response.status_code < 500, response
    return response


def messages_of(response: Any) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


# ---------------------------------------------------------------------------------------------
# Accounts: allauth's rate limits live in the cache


def _signup(client: Client, email: str) -> Any:
    return client.post(
        reverse("account_signup"),
        {
            "email": email,
            "password1": "a-long-enough-password-2026",
            "password2": "a-long-enough-password-2026",
            "full_name": "New Person",
            "organization_name": "New Customer",
        },
    )


@pytest.mark.parametrize("down", ["redis_down", "broker_down"])
def test_login_signup_and_password_reset(client: Client, down: str, request) -> None:  # type: ignore[no-untyped-def]
    request.getfixturevalue(down)
    member = MembershipFactory()
    wrong = timed(
        lambda: client.post(
            reverse("account_login"), {"login": member.user.email, "password": "wrong"}
        )
    )
    assert wrong.status_code == 200 and "not correct" in wrong.content.decode()
    right = timed(
        lambda: client.post(
            reverse("account_login"), {"login": member.user.email, "password": PASSWORD}
        )
    )
    assert right.status_code == 302 and right["Location"] == reverse("dashboard")
    client.logout()

    # Sign-up commits the account and its verification email; the hand-off fails quietly and
    # the relay sends the email later.
    signed_up = timed(lambda: _signup(client, "new@customer.example"))
    assert signed_up.status_code == 302
    assert User.objects.filter(email="new@customer.example").exists()
    assert OutboundEmail.objects.filter(
        to=["new@customer.example"], status=OutboundEmail.Status.PENDING
    ).exists()
    client.logout()

    reset = timed(
        lambda: client.post(reverse("account_reset_password"), {"email": member.user.email})
    )
    assert reset.status_code == 302
    assert OutboundEmail.objects.filter(to=[member.user.email]).exists()


def test_login_failures_are_still_limited_while_redis_is_down(client: Client, redis_down) -> None:  # type: ignore[no-untyped-def]
    """The fallback counts in process memory: the limit holds (per process), it is not off."""
    member = MembershipFactory()
    for _ in range(5):
        client.post(reverse("account_login"), {"login": member.user.email, "password": "wrong"})
    refused = timed(
        lambda: client.post(
            reverse("account_login"), {"login": member.user.email, "password": "wrong"}
        )
    )
    assert "Too many failed login attempts" in refused.content.decode()


# ---------------------------------------------------------------------------------------------
# Codes and keys


@pytest.mark.parametrize("down", ["redis_down", "broker_down"])
def test_get_a_key_from_code_entry_to_confirm(client: Client, down: str, request) -> None:  # type: ignore[no-untyped-def]
    request.getfixturevalue(down)
    member = MembershipFactory()
    client.force_login(member.user)
    client.get(reverse("get-a-key"))
    refused = timed(lambda: post_step(client, "serial", {"serial": generate_code()}))
    assert "could not find" in str(refused.context["wizard"]["form"].errors)

    serial = SerialNumberFactory()
    walk(client, serial.code, confirm=False)
    confirmed = timed(lambda: post_step(client, "confirm"))
    assert confirmed.status_code == 302  # the key page, although the email could not be queued
    license = License.objects.get()
    page = timed(lambda: client.get(confirmed["Location"]))
    assert license.key in page.content.decode()
    # The key's email, to be written by its sender (the member's body with the link, the
    # technical contact's): the relay writes and sends it.
    (email,) = OutboundEmail.objects.all()
    assert email.status == OutboundEmail.Status.PENDING
    assert email.compose is not None and email.compose["license"] == str(license.pk)


@pytest.mark.parametrize("down", ["redis_down", "broker_down"])
def test_email_key_again_and_renewal_code(client: Client, down: str, request) -> None:  # type: ignore[no-untyped-def]
    request.getfixturevalue(down)
    member = MembershipFactory()
    client.force_login(member.user)
    license = LicenseFactory(owner=member.organization)
    emailed = timed(
        lambda: client.post(reverse("license-email", kwargs={"pk": license.pk}), follow=True)
    )
    assert "emailed to" in messages_of(emailed)
    assert OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING).exists()
    renewed = timed(
        lambda: client.post(
            reverse("license-renew", kwargs={"pk": license.pk}), {"serial": generate_code()}
        )
    )
    # Refused at the field, on the page again.
    assert renewed.status_code == 400 and "could not find" in renewed.content.decode().lower()


@pytest.mark.parametrize("down", ["redis_down", "broker_down"])
def test_upgrade_notification_entry_and_link(client: Client, down: str, request) -> None:  # type: ignore[no-untyped-def]
    request.getfixturevalue(down)
    member = MembershipFactory()
    client.force_login(member.user)
    linked = timed(lambda: client.get(reverse("upgrade"), {"notification": "7K3Q-D2XJ-9MNP-4T8R"}))
    assert "not open for your organization" in linked.content.decode()
    typed = timed(
        lambda: client.post(
            reverse("upgrade"),
            {
                "upgrade_wizard-current_step": "notification",
                "notification-notification_id": "7K3Q-D2XJ-9MNP-4T8R",
            },
        )
    )
    assert "no open upgrade notification" in typed.content.decode()


@pytest.mark.parametrize("down", ["redis_down", "broker_down"])
def test_voucher_codes_and_a_large_confirm(client: Client, down: str, request) -> None:  # type: ignore[no-untyped-def]
    """The large confirm blocked 19.8 s on the result backend; it now records and answers."""
    request.getfixturevalue(down)
    assert celery_app.conf.result_backend is None  # nothing reads task results
    member = MembershipFactory()
    client.force_login(member.user)
    assert timed(lambda: submit_codes(client, generate_code())).status_code == 302  # preview
    codes = [v.code for v in vouchers(INLINE_MAX + 5, quantity_per_voucher=1)]
    voucher_walk(client, "\n".join(codes), confirm=False)
    token = confirm_token(client)
    confirmed = timed(lambda: client.post(reverse("voucher-center-confirm"), {"token": token}))
    assert confirmed.status_code == 302
    conversion = VoucherConversion.objects.get()
    progress = timed(lambda: client.get(confirmed["Location"]))
    assert progress.status_code == 200 and "codes processed" in progress.content.decode()
    # Not handed over: the resume job queues it once the broker is back.
    assert conversion.status == VoucherConversion.Status.PENDING


def test_pages_that_read_only_work(client: Client, redis_down) -> None:  # type: ignore[no-untyped-def]
    member = MembershipFactory()
    client.force_login(member.user)
    LicenseFactory(owner=member.organization)
    for name in ["dashboard", "license-list", "get-a-key", "voucher-center", "upgrades-pending"]:
        assert timed(lambda name=name: client.get(reverse(name))).status_code == 200


def test_an_unexpected_redis_error_is_a_translated_503(client: Client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The net under anything that does not degrade by itself."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from portal import views

    member = MembershipFactory()
    client.force_login(member.user)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(views, "render", broken)
    response = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="pt-br")
    assert response.status_code == 503
    assert "temporariamente indisponível" in response.content.decode()
    assert response["Retry-After"] == "60"


# ---------------------------------------------------------------------------------------------
# The settings as production reads them: REDIS_URL at a closed port, in a fresh process

FRESH_PROCESS = """
import json, sys, time
import django
django.setup()
from django.test import Client
from django.urls import reverse
from licensing.models import License

email, password, serial = sys.argv[1:4]
registration = json.loads(sys.argv[4])
client = Client(HTTP_HOST="localhost")
timings = []

def timed(page, call, *args, **kwargs):
    started = time.monotonic()
    response = call(*args, **kwargs)
    timings.append((page, response.status_code, time.monotonic() - started))
    return response

def step(name, data):
    payload = {f"{name}-{key}": value for key, value in data.items()}
    payload["get_a_key_wizard-current_step"] = name
    # What the page carries: the token of the session's wizard instance (licensing.wizard).
    state = client.session.get("wizard_get_a_key_wizard") or {}
    payload["get_a_key_wizard-instance"] = (state.get("extra_data") or {}).get("instance", "")
    return client.post(reverse("get-a-key"), payload)

timed("login", client.post, reverse("account_login"), {"login": email, "password": password})
client.get(reverse("get-a-key"))
timed("serial", step, "serial", {"serial": serial})
timed("registration", step, "registration", registration)
timed("confirm", step, "confirm", {})
license = License.objects.get()
timed("email again", client.post, reverse("license-email", kwargs={"pk": license.pk}))
print(json.dumps(timings))
"""


@pytest.mark.postgres
@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_a_fresh_process_with_redis_url_at_a_closed_port(
    tmp_path: Path, signing_key_path: Path
) -> None:
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from tests.licensing.factories import REGISTRATION

    member = MembershipFactory()
    # The fresh process has production's password hashers, not the tests' fast one.
    member.user.password = PBKDF2PasswordHasher().encode(PASSWORD, "freshprocesssalt")
    member.user.save(update_fields=["password"])
    serial = SerialNumberFactory()
    env = portal_env(
        redis_url=closed_port_url(),
        var_dir=tmp_path,
        signing_key=signing_key_path,
        DJANGO_ALLOWED_HOSTS="localhost",
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_PROCESS,
            member.user.email,
            PASSWORD,
            serial.code,
            json.dumps(REGISTRATION),
        ],
        cwd=ROOT,
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(page, status) for page, status, _seconds in timings] == [
        ("login", 302),
        ("serial", 200),
        ("registration", 200),
        ("confirm", 302),
        ("email again", 302),
    ]
    assert max(seconds for _page, _status, seconds in timings) < BUDGET, timings
    assert License.objects.filter(owner=member.organization).count() == 1
    # The key's email and the one sent again: a row each, that the worker writes (two bodies,
    # with and without the link) when the relay hands it over.
    pending = OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING)
    assert pending.count() == 2 and not pending.filter(compose__isnull=True).exists()


# ---------------------------------------------------------------------------------------------
# A real Redis, stopped in the middle of the test


@pytest.mark.redis
@pytest.mark.skipif(
    not redis_server_available(), reason="needs redis-server (apt-get install redis-server)"
)
def test_a_real_redis_stopped_mid_test(client: Client, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path)
    server.start()
    try:
        settings.CACHES = {"default": redis_cache(server.url(1))}
        _point_broker_at(server.url(0))
        member = MembershipFactory()
        license = LicenseFactory(owner=member.organization)

        def log_in_and_work() -> None:
            client.logout()
            timed(
                lambda: client.post(
                    reverse("account_login"), {"login": member.user.email, "password": PASSWORD}
                )
            )
            client.get(reverse("get-a-key"))
            timed(lambda: post_step(client, "serial", {"serial": generate_code()}))
            emailed = timed(
                lambda: client.post(
                    reverse("license-email", kwargs={"pk": license.pk}), follow=True
                )
            )
            assert "emailed to" in messages_of(emailed)

        log_in_and_work()
        assert cache.get("probe") is None and cache.add("probe", 1) and cache.get("probe") == 1
        queued = OutboundEmail.objects.count()

        server.stop()
        log_in_and_work()  # Redis is gone: the same pages, as fast, nothing lost
        # The email sent again: one row, its two bodies written by the worker when it sends it.
        assert OutboundEmail.objects.count() == queued + 1
        assert OutboundEmail.objects.filter(status=OutboundEmail.Status.PENDING).exists()
    finally:
        server.stop()
        _point_broker_at(django_settings.CELERY_BROKER_URL)
