"""Runs deploy/nginx.conf with a real nginx (Debian's package) on a free port.

The repository's server block is used as it is, with three substitutions: the upstream (the
test's live server), the listen address (a free port) and the alias (the test's storage root).
A minimal main configuration around it keeps every path nginx writes inside a temp directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fileconnect.servers import free_port, stop, wait_for_port

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
X_ACCEL_LOCATION = "/_fileconnect/"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(path, os.X_OK)), None
    )


def _substitute(text: str, old: str, new: str) -> str:
    # Exactly once: if deploy/nginx.conf changes shape, this fails instead of testing less.
    assert text.count(old) == 1, f"deploy/nginx.conf should contain {old!r} once"
    return text.replace(old, new)


def server_block(*, upstream: str, port: int, root: Path, extra: str = "") -> str:
    text = CONFIG.read_text()
    text = _substitute(text, "server web:8000;", f"server {upstream};")
    text = _substitute(text, "listen 80;", f"listen 127.0.0.1:{port};")
    if extra:
        text = _substitute(text, "    location / {", f"{extra}\n    location / {{")
    return _substitute(text, "alias /srv/fileconnect/;", f"alias {root}/;")


@contextmanager
def running_nginx(*, upstream: str, root: Path, workdir: Path, extra: str = "") -> Iterator[str]:
    """Starts nginx in front of `upstream` (host:port); yields its base URL. `extra` adds
    locations to the server block (the benchmark's static floor)."""
    binary = nginx_binary()
    assert binary is not None, "nginx is not installed: apt-get install nginx"
    port = free_port()
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    # As root, nginx would switch its workers to `nobody`, who cannot read pytest's temp dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    config = workdir / "nginx.conf"
    config.write_text(
        f"""
{user}
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
{server_block(upstream=upstream, port=port, root=root, extra=extra)}
}}
"""
    )
    log = workdir / "error.log"
    log.touch()
    process = subprocess.Popen(
        [binary, "-p", str(workdir), "-c", str(config), "-e", str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
