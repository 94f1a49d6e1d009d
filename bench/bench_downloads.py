"""Figures for FileConnect downloads: a 1 GiB file through the portal's own streaming path and
through nginx (X-Accel-Redirect), against `cat FILE > /dev/null` of the same file, same run.

    psql -h 127.0.0.1 -U postgres -c 'create database portal_bench_downloads'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_downloads \\
        .venv/bin/python bench/bench_downloads.py [--size-mib 1024] [--runs 3]

Needs nginx (`apt-get install nginx`), curl, and twice the file size free in the temp directory
(the source file and the stored copy). It adds the file with the same service as `manage.py
releases add-file`, starts gunicorn (one sync worker, as in production) twice, once streaming
and once behind nginx running deploy/nginx.conf, and downloads with curl to /dev/null.

Floors, measured in the same run on the same (page-cached) file: `cat FILE > /dev/null`, the
goal's reference, which copies each 128 KiB block once within the CPU cache; a bare loopback
socket sending the file with sendfile(2), which no HTTP server can beat on this machine; and
nginx serving the file as a plain static file, which X-Accel-Redirect can at best equal.

Memory: the gunicorn worker's resident set is sampled from /proc every 5 ms during each
download, and its kernel high-water mark (VmHWM) read at the end: the peak includes Django and
the whole portal loaded, not only what a download adds. A smaller file is streamed as well, to
show that the peak does not follow the file size. It asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = Path(tempfile.mkdtemp(prefix="bench-downloads-"))
SECRET = "bench-downloads-secret-key-" + "x" * 40
# The portal in this process and the gunicorn processes share storage, secrets and database.
SHARED_ENV = {
    "DJANGO_SETTINGS_MODULE": "portal.settings",
    "DJANGO_SECRET_KEY": SECRET,
    "DJANGO_LOG_LEVEL": "WARNING",
    "DJANGO_DEBUG": "false",
    "PORTAL_VAR_DIR": str(WORKDIR / "var"),
    "FILECONNECT_ROOT": str(WORKDIR / "fileconnect"),
    "CELERY_TASK_ALWAYS_EAGER": "true",
}
os.environ.update(SHARED_ENV)
os.environ.pop("REDIS_URL", None)  # no broker needed; keeps the figures about the download

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from fileconnect.links import download_url  # noqa: E402
from fileconnect.models import ReleaseFile  # noqa: E402
from fileconnect.services import release_file_add  # noqa: E402
from licensing.models import License, Product, ProductVersion, SupportRegistration  # noqa: E402
from licensing.services import IssueSource, license_issue  # noqa: E402
from portal.models import Membership, Organization, User  # noqa: E402
from tests.fileconnect.nginx import X_ACCEL_LOCATION, nginx_binary, running_nginx  # noqa: E402
from tests.fileconnect.servers import free_port, stop, wait_for_port  # noqa: E402

MIB = 1024 * 1024
CAT = shutil.which("cat") or "/bin/cat"
CURL = shutil.which("curl") or "curl"


def make_file(path: Path, size: int) -> None:
    block = os.urandom(16 * MIB)  # random, so nothing on the way can compress it
    with path.open("wb") as handle:
        written = 0
        while written < size:
            part = block[: min(len(block), size - written)]
            handle.write(part)
            written += len(part)


def world() -> tuple[User, License, ProductVersion]:
    stamp = str(time.time_ns())
    product = Product.objects.create(sku=f"BENCH-DL-{stamp}", name="Bench Installer")
    version = ProductVersion.objects.create(product=product, version="1.0")
    organization = Organization.objects.create(name=f"Bench Downloads {stamp}")
    user = User.objects.create_user(email=f"bench-dl-{stamp}@bench.example", password=None)
    Membership.objects.create(user=user, organization=organization, role="admin")
    registration = SupportRegistration.objects.create(
        organization=organization, company="Bench", address="1 Bench St", country="BR",
        primary_name="P", primary_email="p@bench.example", primary_phone="1",
        technical_name="T", technical_email="t@bench.example", technical_phone="2",
    )  # fmt: skip
    today = timezone.localdate()
    license = license_issue(
        source=IssueSource(
            kind=License.Source.SERIAL,
            ref="BENCH",
            version=version,
            quantity=1,
            maintenance_start=today,
            maintenance_end=today.replace(year=today.year + 1),
        ),
        owner=organization,
        registration=registration,
        acting_user=None,
        notify=False,
    )
    return user, license, version


def add(version: ProductVersion, path: Path) -> tuple[ReleaseFile, float]:
    start = time.perf_counter()
    with path.open("rb") as source:
        added = release_file_add(
            version=version, platform="Linux", source=source, filename=path.name, actor=None
        )
    return added, time.perf_counter() - start


def timed_cat(path: Path) -> float:
    """`cat FILE > /dev/null`, timed from outside as the downloads are."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run([CAT, str(path)], stdout=devnull, check=True)  # noqa: S603
    return time.perf_counter() - start


@contextmanager
def raw_sendfile_server(path: Path) -> Iterator[str]:
    """The socket floor: a bare HTTP answer and the file by sendfile(2), nothing else (no
    nginx, no portal), to show what any server can reach over loopback on this machine."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection, path.open("rb") as handle:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                size = path.stat().st_size
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                connection.sendall(head.encode())
                connection.sendfile(handle)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/file"
    finally:
        stopping.set()
        listener.close()
        thread.join(timeout=5)


class RssSampler:
    """Samples a process's resident set size (VmRSS) from /proc in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _field(self, name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
        return 0

    def rss_kib(self) -> int:
        return self._field("VmRSS")

    def hwm_kib(self) -> int:
        return self._field("VmHWM")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.rss_kib())
            time.sleep(0.005)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def gunicorn(*, x_accel: bool) -> Iterator[tuple[str, int]]:
    """One sync worker, as `make serve` runs them; yields its address and the worker's pid."""
    port = free_port()
    log = WORKDIR / f"gunicorn-{port}.log"
    env = {**os.environ, "FILECONNECT_X_ACCEL_LOCATION": X_ACCEL_LOCATION if x_accel else ""}
    env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    with log.open("wb") as output:
        master = subprocess.Popen(  # noqa: S603 - our own gunicorn, fixed arguments
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "portal.wsgi",
                f"--bind=127.0.0.1:{port}",
                "--workers=1",
                "--timeout=600",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, master, log)
        yield f"127.0.0.1:{port}", _worker_of(master.pid)
    finally:
        stop(master)


def _worker_of(master: int, timeout: float = 30) -> int:
    """The pid of the master's worker (the master listens before the worker is forked)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("gunicorn started no worker")


def curl(url: str, session: str) -> tuple[int, float]:
    """Downloads to /dev/null; the bytes received and the seconds it took."""
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [
            CURL,
            "-sS",
            "--fail",
            "-o",
            os.devnull,
            "-H",
            f"Cookie: sessionid={session}",
            "-w",
            "%{size_download} %{time_total}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    size, seconds = result.stdout.split()
    return int(size), float(seconds)


def downloads(
    base: str,
    worker: int,
    session: str,
    link: Callable[[ReleaseFile], str],
    files: list[ReleaseFile],
    runs: int,
) -> dict[int, dict[str, float]]:
    """Per file: best and median seconds, and the worker's memory (MiB)."""
    figures: dict[int, dict[str, float]] = {}
    sampler = RssSampler(worker)
    # A first, small request loads the whole portal into the worker: the baseline.
    curl(f"{base}/fileconnect/", session)
    baseline = sampler.rss_kib() / 1024
    for release_file in files:
        times = []
        with RssSampler(worker) as during:
            for _ in range(runs):
                size, seconds = curl(base + link(release_file), session)
                assert size == release_file.size, (size, release_file.size)
                times.append(seconds)
        figures[release_file.pk] = {
            "best": min(times),
            "median": statistics.median(times),
            "baseline_mib": baseline,
            "peak_mib": during.peak_kib / 1024,
            "hwm_mib": during.hwm_kib() / 1024,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if nginx_binary() is None or shutil.which("curl") is None:
        sys.exit("bench_downloads needs nginx and curl: apt-get install nginx curl")

    call_command("migrate", verbosity=0)
    user, license, version = world()
    session_client = Client()
    session_client.force_login(user)
    session = session_client.cookies["sessionid"].value

    def link(release_file: ReleaseFile) -> str:
        """A fresh signed link for each download, as the page would offer."""
        return download_url(user_id=user.pk, file_id=release_file.pk, basis=f"license:{license.pk}")

    sources = WORKDIR / "sources"
    sources.mkdir()
    big_source = sources / f"installer-{args.size_mib}mib.bin"
    small_source = sources / f"installer-{args.small_mib}mib.bin"
    make_file(big_source, args.size_mib * MIB)
    make_file(small_source, args.small_mib * MIB)
    big, add_seconds = add(version, big_source)
    small, _ = add(version, small_source)
    big_source.unlink()  # the stored copy is what every path below reads
    small_source.unlink()
    stored = Path(SHARED_ENV["FILECONNECT_ROOT"]) / big.storage_name

    timed_cat(stored)  # warm the page cache for every reader alike
    cat_times = [timed_cat(stored) for _ in range(args.runs)]

    root = Path(SHARED_ENV["FILECONNECT_ROOT"])
    load_before = os.getloadavg()[0]
    with gunicorn(x_accel=False) as (address, worker):
        stream = downloads(f"http://{address}", worker, session, link, [small, big], args.runs)
    # nginx alone serving the same file as a plain static file: what X-Accel can at best reach.
    static = f"    location /_bench_static/ {{ alias {root}/; }}"
    with (
        gunicorn(x_accel=True) as (address, worker),
        running_nginx(
            upstream=address, root=root, workdir=WORKDIR / "nginx", extra=static
        ) as nginx_url,
    ):
        accel = downloads(nginx_url, worker, session, link, [big], args.runs)
        static_times = [
            curl(f"{nginx_url}/_bench_static/{big.storage_name}", session)[1]
            for _ in range(args.runs)
        ]
    with raw_sendfile_server(stored) as raw_url:
        socket_times = [curl(raw_url, session)[1] for _ in range(args.runs)]
    cat_times += [timed_cat(stored) for _ in range(args.runs)]  # before and after, alike
    report(
        args,
        big,
        small,
        {"cat": cat_times, "socket": socket_times, "static": static_times},
        stream,
        accel,
        add_seconds,
        load_before,
    )


def report(
    args: argparse.Namespace,
    big: ReleaseFile,
    small: ReleaseFile,
    floors: dict[str, list[float]],
    stream: dict[int, dict[str, float]],
    accel: dict[int, dict[str, float]],
    add_seconds: float,
    load_before: float,
) -> None:
    size = big.size
    cat_times, static_times = floors["cat"], floors["static"]
    cat_best, static_best = min(cat_times), min(static_times)

    def rate(seconds: float) -> str:
        return f"{size / seconds / MIB:.0f} MiB/s"

    print(
        f"FileConnect downloads: {size / 1024**3:.2f} GiB file, curl to /dev/null over loopback, "
        f"best and median of {args.runs} runs; {os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after"
    )
    print(f"  {'path':<52}{'best':>8}{'throughput':>14}{'median':>9}{'× cat':>7}{'× nginx':>9}")
    rows = [
        ("cat FILE > /dev/null (floor)", cat_times),
        ("loopback socket, sendfile(2), no server around it", floors["socket"]),
        ("nginx alone: the same file as a static file", static_times),
        ("nginx X-Accel-Redirect (portal checks, nginx sends)", [accel[big.pk]["best"]]),
        ("portal streaming (gunicorn sync worker, 1 MiB chunks)", [stream[big.pk]["best"]]),
    ]
    medians = [
        statistics.median(cat_times),
        statistics.median(floors["socket"]),
        statistics.median(static_times),
        accel[big.pk]["median"],
        stream[big.pk]["median"],
    ]
    for (name, times), median in zip(rows, medians, strict=True):
        best = min(times)
        print(
            f"  {name:<52}{best:>7.2f}s{rate(best):>14}{median:>8.2f}s"
            f"{cat_best / best:>7.2f}{static_best / best:>9.2f}"
        )
    print(
        f"  Adding the file (release_file_add: stream into storage, SHA-256, signature): "
        f"{add_seconds:.2f}s, {rate(add_seconds)}"
    )
    print()
    print("Web process memory: the gunicorn worker's resident set (Django and the portal loaded)")
    print(f"  {'path':<52}{'file':>9}{'before':>9}{'peak':>9}{'peak MB':>9}")
    peaks = []
    for name, figures, release_file in (
        ("portal streaming", stream, small),
        ("portal streaming", stream, big),
        ("nginx X-Accel-Redirect", accel, big),
    ):
        f = figures[release_file.pk]
        peak = max(f["peak_mib"], f["hwm_mib"])
        peaks.append(peak)
        print(
            f"  {name:<52}{release_file.size / MIB:>6.0f}MiB{f['baseline_mib']:>6.1f}MiB"
            f"{peak:>6.1f}MiB{peak * MIB / 1e6:>7.1f}MB"
        )
    ratio = cat_best / accel[big.pk]["best"]
    peak_mb = max(peaks) * MIB / 1e6
    print()
    print(f"Goal ≥ 0.9 × cat through nginx: {'met' if ratio >= 0.9 else 'NOT met'} ({ratio:.2f}).")
    print(f"Goal peak memory < 100 MB: {'met' if peak_mb < 100 else 'NOT met'} ({peak_mb:.1f} MB).")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(WORKDIR, ignore_errors=True)
