"""Production mode refuses what it would be unsafe to run with: each case imports the settings
in a fresh interpreter with only the given environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.processes import ROOT

GOOD = {
    "DJANGO_PRODUCTION": "true",
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "licensing.example.com",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def _example_value(name: str) -> str:
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} is not in .env.example")


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "PORTAL_", "CELERY_", "EMAIL_"))
    }
    return subprocess.run(
        [sys.executable, "-c", "import portal.settings"],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_complete_production_environment_is_accepted() -> None:
    result = _import_settings(**GOOD)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(_example_value("DJANGO_SECRET_KEY"), id="the .env.example placeholder"),
        pytest.param("CHANGE-ME-" + "x" * 60, id="another change-me"),
        pytest.param("a" * 64, id="one character repeated"),
        pytest.param(secrets.token_urlsafe(20), id="too short"),
    ],
)
def test_a_placeholder_or_weak_secret_is_refused(secret: str) -> None:
    result = _import_settings(**{**GOOD, "DJANGO_SECRET_KEY": secret})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "DJANGO_SECRET_KEY" in result.stderr


def test_production_without_redis_is_refused() -> None:
    env = {key: value for key, value in GOOD.items() if key != "REDIS_URL"}
    result = _import_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "REDIS_URL" in result.stderr


def test_the_embedded_default_still_needs_nothing() -> None:
    assert _import_settings().returncode == 0


def test_every_cookie_is_secure_in_production() -> None:
    # The language switcher's cookie was sent without Secure (check --deploy does not look).
    code = (
        "import portal.settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.LANGUAGE_COOKIE_SECURE, "
        "s.LANGUAGE_COOKIE_SAMESITE)"
    )
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "PORTAL_", "CELERY_", "EMAIL_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**inherited, **GOOD},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.split() == ["True", "True", "True", "Lax"]
