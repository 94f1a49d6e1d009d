"""What every benchmark shares: Django set up against DATABASE_URL, an exact query counter, a
median timer, the floor view (a page that only loads the session and the user), logged-in
session cookies for the bench's gunicorn, and `emit` for the figures bench/run.py collects.

A figure is printed beside a floor measured in the same run, on the same machine and database, so
that a ratio means something; queries are counted with a database execute wrapper, which has no
cap (Django's own query log keeps only the last 9,000).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import clear_url_caches, path  # noqa: E402
from results import Target, emit  # noqa: E402

__all__ = ["QUICK", "SCALE", "Target", "base_url", "emit", "session_cookie"]

FLOOR_URL = "/bench-floor/"
# Set by bench/run.py: the data set's size, a shortened run, the gunicorn it started.
SCALE = int(os.environ.get("BENCH_SCALE", "100000"))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")


def base_url() -> str:
    url = os.environ.get("BENCH_BASE_URL", "")
    if not url:
        raise SystemExit("BENCH_BASE_URL is not set: run this through `make bench` (bench/run.py)")
    return url


def session_cookie(email: str) -> str:
    """A logged-in session for `email`, as the login page would create it (no rate limit)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from portal.models import User

    user = User.objects.get(email=email)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


class QueryCounter:
    """Counts every statement sent to the database while active."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        yield counter


@dataclass(frozen=True)
class Timing:
    median_ms: float
    queries: int


def measure(request: Callable[[], Any], *, runs: int = 15, warmup: int = 2) -> Timing:
    """The median wall time of `request` and the statements of its last run."""
    for _ in range(warmup):
        request()
    durations = []
    queries = 0
    for _ in range(runs):
        with count_queries() as counter:
            started = time.perf_counter()
            request()
            durations.append(time.perf_counter() - started)
        queries = counter.count
    return Timing(statistics.median(durations) * 1000, queries)


@login_required
def _floor_view(request: HttpRequest) -> HttpResponse:
    # Touches the session and the user, as every portal page does, and nothing else.
    return HttpResponse(f"{request.user.pk}")


def install_floor_view() -> None:
    """Adds the floor page to the portal's URLs for this process (benchmarks only)."""
    from portal import urls

    if not any(getattr(p, "name", None) == "bench-floor" for p in urls.urlpatterns):
        urls.urlpatterns.append(path(FLOOR_URL.strip("/") + "/", _floor_view, name="bench-floor"))
        clear_url_caches()
    settings.ALLOWED_HOSTS = ["*"]


def report(label: str, timing: Timing, floor: Timing | None = None) -> None:
    ratio = f"   {timing.median_ms / floor.median_ms:5.1f}× floor" if floor else ""
    print(f"{label:<48} {timing.median_ms:8.1f} ms   {timing.queries:4d} queries{ratio}")
