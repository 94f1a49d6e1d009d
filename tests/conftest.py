from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import translation

from licensing import listcache
from licensing.signing import create_signing_key
from portal import breaker
from portal.celery import app as celery_app


@pytest.fixture(scope="session")
def signing_key_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "license-signing-key.pem"
    create_signing_key(path)
    return path


@pytest.fixture
def own_signing_key(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A signing key of the test's own, for a test that rotates it: the session's key (and
    every other test) keeps its own. Retired keys go beside it, in tmp_path/keys."""
    path = tmp_path / "keys" / "license-signing-key.pem"
    create_signing_key(path)
    settings.LICENSE_SIGNING_KEY_FILE = path
    return path


@pytest.fixture(autouse=True)
def _portal_test_settings(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, settings, signing_key_path: Path
) -> Iterator[None]:
    settings.LICENSE_SIGNING_KEY_FILE = signing_key_path
    # My licenses' page cache knows a change when its transaction commits (licensing/listcache):
    # on in the tests whose writes commit (transactional ones, the browser's live server), off
    # in those that run inside a transaction rolled back at the end, where nothing commits.
    marker = request.node.get_closest_marker("django_db")
    if not (
        (marker is not None and marker.kwargs.get("transaction"))
        or {"transactional_db", "live_server"} & set(request.fixturenames)
    ):
        settings.LICENSE_LIST_CACHE_SECONDS = 0
    # Retired keys beside the session key (none): never a developer's directory from the env.
    settings.LICENSE_SIGNING_RETIRED_KEYS_DIR = None
    settings.PORTAL_SITE_URL = "http://testserver"
    # Real hashing costs ~0.3 s per user; tests create hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tasks run in-process unless a test starts a real worker (tests/vouchers/test_worker.py).
    celery_conf(task_always_eager=True)
    breaker.reset()
    cache.clear()
    listcache.forget()
    # Each test starts in the default language: a request's LocaleMiddleware leaves the
    # language it activated on the thread, and emails queued outside a request use it.
    translation.activate(settings.LANGUAGE_CODE)
    yield
    cache.clear()


@pytest.fixture(params=["request", "worker"])
def license_email_writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test twice: the license email written by the request that acted (tasks run
    in-process, as in the embedded default) and by its sender, from what the request stored
    (the full stack, where the Celery worker writes it: portal.emails.queue_email_later).
    The worker's emails exist once the on-commit hand-off ran."""
    from licensing.services import issue

    if request.param == "worker":
        monkeypatch.setattr(issue, "emails_written_by_sender", lambda: True)
    return str(request.param)


def celery_conf(**changes: object) -> None:
    """Changes Celery settings for a test.

    Celery 5.6 reads a setting under the settings' namespace (CELERY_TASK_ALWAYS_EAGER) before
    the plain name, so a plain `conf.task_always_eager = True` would be silently ignored.
    """
    for name, value in changes.items():
        celery_app.conf.update({name: value, f"CELERY_{name.upper()}": value})


def postgres_only() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL row locks: set DATABASE_URL=postgres://… (CI does)",
    )


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI provides PostgreSQL, Redis and Chromium: a skip there means a missing service, a failure.
    if os.environ.get("CI", "").lower() != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(
            f"CI: {len(skipped)} test(s) skipped; every service must be present.", red=True
        )
        session.exitstatus = 1
