"""The full stack on 127.0.0.1 for benchmarks and the load test (no Django here).

PostgreSQL and Redis are started the way .ci/run starts them when they do not answer; gunicorn
(two sync workers, persistent connections, the session floor mounted) and a Celery worker with
its beat run as child processes of the caller with the environment it gives them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ensure_services(database_url: str, redis_url: str) -> list[str]:
    """Starts PostgreSQL and Redis as .ci/run does when they do not answer; says what it did."""
    done = []
    db = urlsplit(database_url)
    if not _answers(db.hostname or "127.0.0.1", db.port or 5432):
        versions = sorted(
            os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")]
        )
        subprocess.run(  # noqa: S603
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],  # noqa: S607
            check=True,
        )
        done.append(f"started PostgreSQL {versions[-1]}")
    redis = urlsplit(redis_url)
    if not _answers(redis.hostname or "127.0.0.1", redis.port or 6379):
        subprocess.run(  # noqa: S603
            [  # noqa: S607
                "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1",
                "--port", str(redis.port or 6379), "--save", "", "--appendonly", "no",
            ],
            check=True,
        )  # fmt: skip
        done.append("started Redis")
    for _ in range(30):
        if _answers(db.hostname or "127.0.0.1", db.port or 5432) and _answers(
            redis.hostname or "127.0.0.1", redis.port or 6379
        ):
            return done
        time.sleep(1)
    raise RuntimeError("PostgreSQL or Redis did not come up")


def create_database(database_url: str, *, fresh: bool = False) -> None:
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    args += ["-U", parts.username or "postgres"]
    if fresh:
        subprocess.run(["dropdb", *args, "--if-exists", name], check=True)  # noqa: S603,S607
    query = "SELECT datname FROM pg_database"
    exists = subprocess.run(  # noqa: S603
        ["psql", *args, "-tAc", query],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if name not in exists:
        subprocess.run(["createdb", *args, name], check=True)  # noqa: S603,S607


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(**overrides: str) -> dict[str, str]:
    """The environment of the bench's web and worker processes: not production, no debug."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_LOG_LEVEL": "WARNING",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PORTAL_BENCH_FLOOR": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "EMAIL_HOST": "",
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    env.update(overrides)
    return env


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int = 2, log: Path | None = None) -> Iterator[str]:
    """gunicorn serving the portal on a free port; yields its base URL."""
    port = free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(  # noqa: S603
        [
            str(BIN / "gunicorn"), "portal.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--timeout", "120", "--graceful-timeout", "5",
        ],
        cwd=ROOT, env=env, stdout=out, stderr=out,
    )  # fmt: skip
    try:
        for _ in range(120):
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode} (see {log})")
            if _answers("127.0.0.1", port):
                break
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]


@contextmanager
def celery_worker(
    env: dict[str, str], *, concurrency: int = 2, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    schedule = ROOT / "var" / "bench" / f"celerybeat-{os.getpid()}"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603
        [
            str(BIN / "celery"), "-A", "portal", "worker", "--loglevel=WARNING",
            f"--concurrency={concurrency}", "--without-gossip", "--without-mingle",
            "-n", f"bench-{os.getpid()}@%h",
            # The beat too, as the full stack runs it (docker-compose.yml): its periodic jobs
            # (the outbox relay, the search indexes' merge) are part of production's load.
            "--beat", "--schedule", str(schedule),
        ],
        cwd=ROOT, env=env, stdout=out, stderr=out,
    )  # fmt: skip
    try:
        time.sleep(3)
        if process.poll() is not None:
            raise RuntimeError(f"celery exited with {process.returncode} (see {log})")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]
        for path in schedule.parent.glob(f"{schedule.name}*"):
            path.unlink(missing_ok=True)


def have(command: str) -> bool:
    return shutil.which(command) is not None
