"""The benchmarks' session floor is mounted only on request and never in production; the
database connection settings keep PostgreSQL connections and leave SQLite alone, whose
transactions take the write lock when they begin."""

from __future__ import annotations

import importlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import clear_url_caches

from tests.portal.factories import UserFactory
from tests.processes import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def floor_mounted(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    from portal import urls

    settings.PORTAL_BENCH_FLOOR = True
    importlib.reload(urls)
    clear_url_caches()
    yield
    settings.PORTAL_BENCH_FLOOR = False
    importlib.reload(urls)
    clear_url_caches()


def test_the_floor_is_absent_by_default(client: Client) -> None:
    client.force_login(UserFactory())
    assert client.get("/bench-floor/").status_code == 404


@pytest.mark.usefixtures("floor_mounted")
def test_the_floor_answers_with_the_user_when_switched_on(client: Client) -> None:
    user = UserFactory()
    assert client.get("/bench-floor/").status_code == 302  # to the login page
    client.force_login(user)
    response = client.get("/bench-floor/")
    assert response.status_code == 200
    assert response.content.decode() == str(user.pk)


@pytest.mark.usefixtures("floor_mounted")
def test_the_layout_floor_renders_the_layout_for_the_user(client: Client) -> None:
    user = UserFactory()
    assert client.get("/bench-floor/layout/").status_code == 302
    client.force_login(user)
    response = client.get("/bench-floor/layout/")
    assert response.status_code == 200
    assert response.templates[0].name == "base.html"
    assert 'data-testid="account-menu"' in response.content.decode()  # the logged-in layout


def _settings_value(expression: str, **env: str) -> str:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "PORTAL_", "CELERY_", "EMAIL_", "DATABASE_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", f"from portal import settings; print({expression})"],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_production_mode_never_mounts_the_floor() -> None:
    production = {
        "DJANGO_PRODUCTION": "true",
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "licensing.example.com",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    assert _settings_value("settings.PORTAL_BENCH_FLOOR", PORTAL_BENCH_FLOOR="1") == "True"
    floor = _settings_value("settings.PORTAL_BENCH_FLOOR", PORTAL_BENCH_FLOOR="1", **production)
    assert floor == "False"


def test_postgresql_connections_persist_with_health_checks_sqlite_does_not() -> None:
    database = "settings.DATABASES['default']"
    expression = f"({database}['CONN_MAX_AGE'], {database}['CONN_HEALTH_CHECKS'])"
    postgres = "postgres://postgres@127.0.0.1:5432/portal"
    assert _settings_value(expression, DATABASE_URL=postgres) == "(60, True)"
    assert _settings_value(expression, DATABASE_URL="sqlite:///x.sqlite3") == "(0, True)"
    assert _settings_value(expression, DATABASE_URL=postgres, DATABASE_CONN_MAX_AGE="0") == (
        "(0, True)"
    )


def test_sqlite_transactions_begin_immediate_and_wait() -> None:
    options = "settings.DATABASES['default'].get('OPTIONS', {})"
    sqlite = _settings_value(options, DATABASE_URL="sqlite:///x.sqlite3")
    assert sqlite == "{'transaction_mode': 'IMMEDIATE', 'timeout': 20}"
    postgres = "postgres://postgres@127.0.0.1:5432/portal"
    assert "transaction_mode" not in _settings_value(options, DATABASE_URL=postgres)


# Two confirmations at once (a double click) on the embedded SQLite default: each reads, then
# writes the same row, as a confirm step reads the serial, then redeems it.
_SQLITE_CONFIRMS = """
import threading, time
import django
django.setup()
from django.db import connection, transaction
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE counter (id integer PRIMARY KEY, value integer)")
    cursor.execute("INSERT INTO counter VALUES (1, 0)")
connection.close()
start, errors = threading.Barrier(2), []
def confirm():
    start.wait()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT value FROM counter WHERE id = 1")
            (value,) = cursor.fetchone()
            time.sleep(0.3)  # deferred transactions: the other one reads meanwhile
            cursor.execute("UPDATE counter SET value = %s WHERE id = 1", [value + 1])
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connection.close()
threads = [threading.Thread(target=confirm) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT value FROM counter WHERE id = 1")
    print(cursor.fetchone()[0], errors)
"""


def test_concurrent_sqlite_transactions_wait_instead_of_failing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Deferred (SQLite's and Django's default), the second writer failed at once with
    # "database is locked"; immediate, it waits for the first and reads what it wrote.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "PORTAL_", "CELERY_", "EMAIL_", "DATABASE_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", _SQLITE_CONFIRMS],
        cwd=ROOT,
        env={
            **inherited,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
            "PORTAL_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "2 []"
