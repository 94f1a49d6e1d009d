"""The Redis cache, degraded to this process's memory while Redis cannot be reached.

What lives in the cache are allauth's rate limits (login, sign-up, password reset) and nothing
that must survive: a page that reads the cache while Redis is down must still answer, and must
answer quickly. Failing open (django-redis' IGNORE_EXCEPTIONS: every read a miss, every write
dropped) would switch the login limits off during an outage, which is exactly when an attacker
who can take Redis down wants them off. Instead each process keeps counting in its own memory:
the limits hold per process (a few times looser with several gunicorn workers, never off), and
the code-guessing budget does not depend on the cache at all (portal.ratelimit keeps it in the
database).

After a failure the cache stays on the fallback for a few seconds before trying Redis again
(portal.breaker, shared with the broker hand-off), so an outage costs one short timeout per
process every few seconds, not one per cache call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

from . import breaker

# Refused, unreachable, timed out, or something that is not Redis answering on its port.
UNAVAILABLE = (RedisError, OSError)


def _degrading(name: str) -> Callable[..., Any]:
    def method(self: FallbackRedisCache, *args: Any, **kwargs: Any) -> Any:
        if self.redis_down():
            return getattr(self.fallback, name)(*args, **kwargs)
        try:
            return getattr(super(FallbackRedisCache, self), name)(*args, **kwargs)
        except UNAVAILABLE as exc:
            self.mark_down(exc)
            return getattr(self.fallback, name)(*args, **kwargs)

    method.__name__ = name
    return wraps(getattr(RedisCache, name))(method)


class FallbackRedisCache(RedisCache):
    """Django's RedisCache that falls back to a per-process LocMemCache while Redis is down."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self.fallback = LocMemCache(
            f"portal-cache-fallback-{server}",
            {key: value for key, value in params.items() if key != "OPTIONS"},
        )
        self.url = server.split(",")[0].split(";")[0]

    def redis_down(self) -> bool:
        return breaker.is_down(self.url)

    def mark_down(self, exc: BaseException) -> None:
        breaker.mark_down(self.url, exc, what="cache (using this process's memory)")

    add = _degrading("add")
    get = _degrading("get")
    set = _degrading("set")
    touch = _degrading("touch")
    delete = _degrading("delete")
    get_many = _degrading("get_many")
    has_key = _degrading("has_key")
    incr = _degrading("incr")
    set_many = _degrading("set_many")
    delete_many = _degrading("delete_many")
    clear = _degrading("clear")
