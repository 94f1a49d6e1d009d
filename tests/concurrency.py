"""Races for the threaded PostgreSQL tests: every job starts at once, each in its own thread and
database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def run_concurrently(jobs: list[Callable[[], Any]], *, pool: int | None = None) -> list[Any]:
    """Runs every job at once (a barrier) and returns each one's result or the exception it raised.

    `pool` caps how many reach the database at the same time, as a web tier's connection pool
    does (PostgreSQL's default limit is 100 connections, shared with other runs).
    """
    results: list[Any] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))
    slots = threading.BoundedSemaphore(pool or len(jobs))

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            with slots:
                try:
                    results[index] = jobs[index]()
                finally:
                    connections.close_all()
        except BaseException as exc:  # reported by the test, whatever it is
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a job hung (deadlock?)"
    return results
