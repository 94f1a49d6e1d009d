"""portal.sessions: sessions read from Redis, written through to the database, served by the
database alone while Redis is down, and never brought back from Redis once deleted."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal import breaker
from portal.sessions import CACHE_SECONDS, KEY_PREFIX, TOMBSTONE, SessionStore
from portal.settings import redis_cache
from tests.conftest import redis_url
from tests.portal.factories import PASSWORD, MembershipFactory
from tests.processes import RedisServer, closed_port_url, redis_server_available

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.redis,
    pytest.mark.skipif(not redis_url(), reason="needs Redis: set REDIS_URL=redis://… (CI does)"),
]


@pytest.fixture
def redis_sessions(settings):  # type: ignore[no-untyped-def]
    settings.SESSION_ENGINE = "portal.sessions"
    settings.CACHES = {"default": redis_cache(redis_url())}
    return settings


def _log_in(client: Client) -> str:
    membership = MembershipFactory()
    assert (
        client.post(
            reverse("account_login"), {"login": membership.user.email, "password": PASSWORD}
        ).status_code
        == 302
    )
    return client.cookies["sessionid"].value


def _session_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured if '"django_session"' in q["sql"]]


def test_a_page_reads_the_session_from_redis_not_the_database(client, redis_sessions) -> None:  # type: ignore[no-untyped-def]
    key = _log_in(client)
    assert Session.objects.filter(session_key=key).exists()  # written through
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("dashboard")).status_code == 200
    assert _session_queries(captured) == []
    # The user with its memberships is the page's only query.
    assert len(captured) == 1


def test_a_session_only_in_the_database_is_cached_on_first_read(client, redis_sessions) -> None:  # type: ignore[no-untyped-def]
    key = _log_in(client)
    caches["default"].delete(KEY_PREFIX + key)  # Redis restarted: empty
    with CaptureQueriesContext(connection) as first:
        assert client.get(reverse("dashboard")).status_code == 200
    assert len(_session_queries(first)) == 1
    with CaptureQueriesContext(connection) as second:
        assert client.get(reverse("dashboard")).status_code == 200
    assert _session_queries(second) == []


def test_logout_is_final(client, redis_sessions) -> None:  # type: ignore[no-untyped-def]
    key = _log_in(client)
    stolen = Client()
    stolen.cookies["sessionid"] = key
    assert stolen.get(reverse("dashboard")).status_code == 200
    client.post(reverse("account_logout"))
    assert not Session.objects.filter(session_key=key).exists()
    assert caches["default"].get(KEY_PREFIX + key) == TOMBSTONE
    response = stolen.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a_read_racing_a_logout_does_not_bring_the_session_back(redis_sessions) -> None:  # type: ignore[no-untyped-def]
    store = SessionStore()
    store[SESSION_KEY] = "1"
    store.create()
    key = store.session_key
    assert key is not None
    caches["default"].delete(KEY_PREFIX + key)
    reader = SessionStore(key)
    read = reader._get_session_from_db

    def read_then_logout():  # type: ignore[no-untyped-def]
        row = read()  # the slow request read the row (not in Redis)...
        SessionStore(key).delete()  # ...and a logout deleted it before it could cache it
        return row

    reader._get_session_from_db = read_then_logout  # type: ignore[method-assign]
    assert reader.load()[SESSION_KEY] == "1"  # the slow request goes on with its copy,
    assert caches["default"].get(KEY_PREFIX + key) == TOMBSTONE  # but Redis keeps the tombstone
    assert SessionStore(key).load() == {}


def test_redis_down_logged_in_through_the_database(client, redis_sessions) -> None:  # type: ignore[no-untyped-def]
    _log_in(client)
    redis_sessions.CACHES = {"default": redis_cache(closed_port_url())}
    breaker.reset()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("dashboard")).status_code == 200
    assert len(_session_queries(captured)) == 1
    # Logging in and out still work, on the database alone.
    client.post(reverse("account_logout"))
    assert client.get(reverse("dashboard")).status_code == 302
    _log_in(client)
    assert client.get(reverse("dashboard")).status_code == 200


@pytest.mark.skipif(
    not redis_server_available(), reason="needs redis-server (apt-get install redis-server)"
)
def test_a_logout_while_redis_was_down_stays_final_when_it_answers_again(
    client, settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server = RedisServer(tmp_path)
    server.start()
    try:
        settings.SESSION_ENGINE = "portal.sessions"
        settings.CACHES = {"default": redis_cache(server.url(1))}
        key = _log_in(client)
        stolen = Client()
        stolen.cookies["sessionid"] = key
        assert stolen.get(reverse("dashboard")).status_code == 200
        # Redis unreachable (not restarted: it keeps what it holds) while the user logs out.
        settings.CACHES = {"default": redis_cache(closed_port_url())}
        client.post(reverse("account_logout"))
        assert not Session.objects.filter(session_key=key).exists()
        settings.CACHES = {"default": redis_cache(server.url(1))}
        breaker.reset()
        assert caches["default"].get(KEY_PREFIX + key) is not None  # the stale entry is there
        response = stolen.get(reverse("dashboard"))
        assert response.status_code == 302
        assert caches["default"].get(KEY_PREFIX + key) in (None, TOMBSTONE)
    finally:
        server.stop()


def test_a_session_lives_in_redis_for_fifteen_minutes_at_most(client, redis_sessions) -> None:  # type: ignore[no-untyped-def]
    """Bounds what a logout Redis missed (another process, a restart) can leave behind."""
    key = _log_in(client)
    cache = caches["default"]
    full_key = cache.make_and_validate_key(KEY_PREFIX + key)  # type: ignore[attr-defined]
    redis = cache._cache.get_client(full_key)  # type: ignore[attr-defined]
    assert 0 < redis.ttl(full_key) <= CACHE_SECONDS
    redis.delete(full_key)  # as after the 15 minutes: read from the database, cached again
    assert client.get(reverse("dashboard")).status_code == 200
    assert 0 < redis.ttl(full_key) <= CACHE_SECONDS
