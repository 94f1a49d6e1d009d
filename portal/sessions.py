"""Sessions read from Redis and written through to the database (SESSION_ENGINE with REDIS_URL).

Django's `cached_db` engine, with three changes that its stock form does not make:

- **Redis down: the database alone.** The project's cache falls back to each process's memory
  while Redis is down (portal/cache.py). Sessions must not: a session deleted at logout in one
  process would live on in another process's memory, and a login written in one process would
  be unknown to the others. So the session cache talks to Redis only, through the same breaker
  (portal/breaker.py), and while Redis is unavailable every read and write goes to the database:
  no 500, no lost login, one short timeout per process every few seconds at most.
- **Logout is final.** Deleting a session leaves a tombstone in Redis instead of removing the
  entry, and a read that found the session only in the database puts it into Redis with `add`
  (only if absent). So a request that read the session just before another one deleted it
  cannot put it back into the cache; a tombstone reads as "no session", whatever the database
  says.
- **What Redis missed is forgotten when it answers again.** The keys this process wrote or
  deleted while Redis was down are removed from Redis on its first successful call afterwards,
  so an entry from before the outage does not come back (a Redis that restarted has none).
- **An entry lives in Redis for 15 minutes at most** (CACHE_SECONDS), then is read from the
  database again once. What the previous point cannot cover — a logout written only to the
  database while Redis was unreachable, read from Redis by another process before this one
  clears it, or after this one restarted — is so bounded to 15 minutes, for one query per
  session every 15 minutes.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.contrib.sessions.models import Session
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache

from . import breaker
from .cache import UNAVAILABLE

logger = logging.getLogger(__name__)

KEY_PREFIX = "portal.sessions."
TOMBSTONE = "deleted"
CACHE_SECONDS = 15 * 60
_MISS = object()

# Session keys written or deleted while Redis was unreachable, to drop from Redis once it answers.
_missed: set[str] = set()
_missed_lock = threading.Lock()


def _remember_missed(key: str) -> None:
    with _missed_lock:
        _missed.add(key)


class SessionStore(CachedDBStore):
    """cached_db on Redis only, tombstones on delete, the database alone while Redis is down."""

    cache_key_prefix = KEY_PREFIX

    if TYPE_CHECKING:  # what Django's stores have and django-stubs does not declare
        _cache: BaseCache
        _session: dict[str, Any]

        def _get_session_from_db(self) -> Session | None: ...

    # -- Redis, or nothing --------------------------------------------------------------------

    def _redis(self, name: str, *args: Any) -> Any:
        """Calls the session cache on Redis; _MISS when Redis is (recently found) unavailable.

        Calls RedisCache's own method, not portal.cache's per-process fallback (see above).
        """
        cache = self._cache
        url = getattr(cache, "url", "")
        if url and breaker.is_down(url):
            return _MISS
        method = getattr(RedisCache, name) if isinstance(cache, RedisCache) else None
        try:
            if _missed:
                self._forget_missed()
            return method(cache, *args) if method else getattr(cache, name)(*args)
        except UNAVAILABLE as exc:
            if url:
                breaker.mark_down(url, exc, what="sessions (using the database alone)")
            return _MISS

    def _forget_missed(self) -> None:
        with _missed_lock:
            keys = list(_missed)
            _missed.clear()
        try:
            if isinstance(self._cache, RedisCache):
                RedisCache.delete_many(self._cache, keys)
            else:
                self._cache.delete_many(keys)
        except UNAVAILABLE:
            with _missed_lock:
                _missed.update(keys)
            raise

    @staticmethod
    def _cache_age(expiry_age: int) -> int:
        return min(expiry_age, CACHE_SECONDS)

    # -- the session store ----------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        key = self.cache_key
        cached = self._redis("get", key, _MISS)
        if cached == TOMBSTONE:
            self._session_key = None
            return {}
        if isinstance(cached, dict):
            return cached
        row = self._get_session_from_db()
        if row is None:
            return {}
        data: dict[str, Any] = self.decode(row.session_data)
        # Into Redis from now on (a no-op while it is down), unless it was deleted meanwhile.
        self._redis("add", key, data, self._cache_age(self.get_expiry_age(expiry=row.expire_date)))
        return data

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        # A tombstone counts: a deleted session's key is never handed out again.
        if self._redis("get", self.cache_key_prefix + session_key, _MISS) is not _MISS:
            return True
        return super(CachedDBStore, self).exists(session_key)

    def save(self, must_create: bool = False) -> None:
        super(CachedDBStore, self).save(must_create)
        key = self.cache_key
        if self._redis("set", key, self._session, self._cache_age(self.get_expiry_age())) is _MISS:
            _remember_missed(key)

    def delete(self, session_key: str | None = None) -> None:
        super(CachedDBStore, self).delete(session_key)
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        key = self.cache_key_prefix + session_key
        if self._redis("set", key, TOMBSTONE, settings.SESSION_COOKIE_AGE) is _MISS:
            _remember_missed(key)
