"""Real processes for resilience tests and benches: a Redis server the test may stop and
restart, and Celery workers and beat it may kill. Each binds a port chosen at run time."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A redis:// URL where nothing listens: connections are refused at once."""
    return f"redis://127.0.0.1:{free_port()}/0"


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def redis_server_available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


class RedisServer:
    """A private redis-server on a free port, with its data in `directory` (kept on restart)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def ping(self) -> bool:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
        )
        return result.stdout.strip() == b"PONG"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(self.ping, timeout=10):
            raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """As an operator's restart does: SIGTERM, which saves the append-only file first."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def restart(self, *, down_for: float = 0.5) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


class CeleryProcess:
    """`celery -A portal worker` (or beat) with the given environment, in its own process group
    so that kill -9 takes its pool children too, as a crashed container would."""

    def __init__(self, kind: str, env: dict[str, str], log: Path, *args: str) -> None:
        self.log_path = log
        self.log = log.open("wb")
        command = [sys.executable, "-m", "celery", "-A", "portal", kind, "--loglevel=INFO", *args]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        self.log.close()


def worker(env: dict[str, str], log: Path, name: str) -> CeleryProcess:
    # Two pool processes, as docker-compose.yml runs it (the Redis-restart bug of celery 5.7.0
    # shows with a pool of two, not one).
    return CeleryProcess("worker", env, log, "--concurrency=2", f"--hostname={name}@%h")


def beat(env: dict[str, str], log: Path, schedule: Path) -> CeleryProcess:
    return CeleryProcess("beat", env, log, f"--schedule={schedule}")


def portal_env(*, redis_url: str, var_dir: Path, signing_key: Path, **extra: str) -> dict[str, str]:
    """The environment of a portal process sharing this process's database (the test database
    under pytest), with its own Redis, files and a mail backend that keeps nothing."""
    from django.db import connection

    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    database_url = (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PORTAL_VAR_DIR": str(var_dir),
        "LICENSE_SIGNING_KEY_FILE": str(signing_key),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DJANGO_LOG_LEVEL": "INFO",
        **extra,
    }
