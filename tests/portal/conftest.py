"""Fixtures shared by the portal's tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.utils import timezone


class Clock:
    """A fake clock for timezone.now(): the relay's schedule without waiting for it."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(timezone, "now", lambda: fake.now)
    yield fake
