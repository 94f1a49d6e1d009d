"""`make load`: locust headless against the full stack, then check_invariants, into LOAD.md.

1. PostgreSQL and Redis (started when absent); a fresh load database (portal_bench_load) copied
   from seed_bench's template at LOAD_SCALE (built if missing, as bench/run.py does); Redis db
   9 emptied (rate-limit counters, cache, queue of an earlier run).
2. gunicorn (2 sync workers, persistent connections, PORTAL_TRUSTED_PROXY_COUNT=1 so that each
   simulated person's X-Forwarded-For is its address) and a Celery worker (2 processes, with
   its beat, as the full stack runs it).
3. For each user count: locust headless for DURATION (bench/locustfile.py), CPU of gunicorn,
   PostgreSQL and Celery sampled every second from /proc (psutil).
4. The outbox drains, then `manage.py check_invariants` on the load database; its output goes
   into bench/LOAD.md with requests/s, p50/p95/p99 per page and the error rate of each run.

    make load USERS=10,30,60 DURATION=2m
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import LOGS, commit, machine, prepare_database
from stack import BIN, ROOT, celery_worker, ensure_services, gunicorn, server_env

DATABASE = "postgres://postgres@127.0.0.1:5432/portal_bench_load"
REDIS = "redis://127.0.0.1:6379/9"
PASSWORD = "bench-password-2026"  # noqa: S105 - seed_bench's, bench databases only


def psql(database_url: str, query: str) -> list[list[str]]:
    out = subprocess.run(  # noqa: S603
        ["psql", database_url, "-X", "-tA", "-F", "\t", "-c", query],  # noqa: S607
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line.split("\t") for line in out.splitlines() if line]


def write_pools(database_url: str, path: Path) -> dict[str, int]:
    open_serials = "SELECT code FROM licensing_serialnumber WHERE status = 'open' AND kind = 'new'"
    serials = [row[0] for row in psql(database_url, open_serials + " ORDER BY id")]
    open_vouchers = "SELECT code FROM vouchers_voucher WHERE status = 'open' ORDER BY id"
    vouchers = [row[0] for row in psql(database_url, open_vouchers)]
    notifications = dict(
        psql(
            database_url,
            "SELECT u.email, n.code FROM upgrades_upgradenotification n"
            " JOIN portal_membership m ON m.organization_id = n.organization_id"
            " JOIN portal_user u ON u.id = m.user_id WHERE u.email LIKE 'load-%'",
        )
    )
    pools = {"serials": serials, "vouchers": vouchers, "notifications": notifications,
             "password": PASSWORD}  # fmt: skip
    path.write_text(json.dumps(pools))
    return {key: len(value) for key, value in pools.items() if key != "password"}


class CpuSampler:
    """CPU % (of one core) of this run's processes, by group, sampled every second.

    A group is the processes whose command line contains its needle: this gunicorn's bind
    address, this Celery worker's name, the PostgreSQL backends of the load database (the
    server is shared with other databases), locust.
    """

    def __init__(self, groups: dict[str, str]) -> None:
        self.GROUPS = groups
        self.samples: dict[str, list[float]] = {name: [] for name in self.GROUPS}
        self.total: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._procs: dict[int, psutil.Process] = {}

    def _group(self, process: psutil.Process) -> str | None:
        try:
            text = " ".join(process.cmdline()) or process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        for name, needle in self.GROUPS.items():
            if needle in text:
                return name
        return None

    def _run(self) -> None:
        psutil.cpu_percent(None)
        while not self._stop.wait(1.0):
            sums = dict.fromkeys(self.GROUPS, 0.0)
            for process in psutil.process_iter():
                group = self._group(process)
                if group is None:
                    continue
                known = self._procs.setdefault(process.pid, process)
                with contextlib.suppress(psutil.NoSuchProcess):
                    sums[group] += known.cpu_percent(None)
            for name, value in sums.items():
                self.samples[name].append(value)
            self.total.append(psutil.cpu_percent(None))

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        # The first sample primes each process's counter: leave it out.
        def mean(values: list[float]) -> float:
            values = values[1:] or values
            return sum(values) / len(values) if values else 0.0

        return {**{name: mean(v) for name, v in self.samples.items()}, "machine": mean(self.total)}


def run_locust(
    url: str, users: int, duration: str, pools: Path, prefix: Path, tags: str = ""
) -> dict[str, Any]:
    groups = {  # locust first: its command line names the server's address too
        "locust": "locustfile",
        "gunicorn": "--bind " + url.removeprefix("http://"),
        "postgres": "portal_bench_load",
        "celery": f"bench-{os.getpid()}@",
    }
    env = {**os.environ, "BENCH_LOAD_POOLS": str(pools)}
    command = [
        str(BIN / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
        "-u", str(users), "-r", str(max(1, users // 5)), "-t", duration, "--host", url,
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "30",
        "--loglevel", "WARNING", *(["--tags", *tags.split(",")] if tags else []),
    ]  # fmt: skip
    with CpuSampler(groups) as sampler:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    (prefix.parent / f"{prefix.name}.log").write_text(result.stdout + "\n" + result.stderr)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        stats = list(csv.DictReader(handle))
    failures: list[dict[str, str]] = []
    if Path(f"{prefix}_failures.csv").exists():
        with open(f"{prefix}_failures.csv", newline="") as handle:
            failures = list(csv.DictReader(handle))
    exceptions: list[dict[str, str]] = []
    if Path(f"{prefix}_exceptions.csv").exists():
        with open(f"{prefix}_exceptions.csv", newline="") as handle:
            exceptions = list(csv.DictReader(handle))
    return {"users": users, "stats": stats, "failures": failures, "exceptions": exceptions,
            "cpu": sampler.summary()}  # fmt: skip


def _ms(row: dict[str, str], key: str) -> str:
    value = row.get(key) or "0"
    return "–" if value == "N/A" else f"{float(value):,.0f}"


def render(runs: list[dict[str, Any]], meta: dict[str, str], invariants: str) -> str:
    lines = ["# Load test report", ""]
    lines += [f"- **{key}**: {value}" for key, value in meta.items()]
    lines += ["", "## Runs", "",
              "| Users | Requests/s | Requests | Failures | Flows ended early | Error rate | p50 | "
              "p95 | p99 | "
              "CPU gunicorn | CPU postgres | CPU celery | CPU locust | CPU machine |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for run in runs:
        total = next(r for r in run["stats"] if r["Name"] == "Aggregated")
        count, failed = int(total["Request Count"]), int(total["Failure Count"])
        cpu = run["cpu"]
        lines.append(
            f"| {run['users']} | {float(total['Requests/s']):.1f} | {count:,} | {failed:,} | "
            f"{sum(int(e['Count']) for e in run['exceptions'])} | "
            f"{failed / count * 100 if count else 0:.2f} % | {_ms(total, '50%')} ms | "
            f"{_ms(total, '95%')} ms | {_ms(total, '99%')} ms | {cpu['gunicorn']:.0f} % | "
            f"{cpu['postgres']:.0f} % | {cpu['celery']:.0f} % | {cpu['locust']:.0f} % | "
            f"{cpu['machine']:.0f} % |"
        )
    lines += ["", "CPU: percent of one core, averaged over the run (200 % = both cores); "
              "machine: the whole machine including the other helpers' processes.", ""]  # fmt: skip
    for run in runs:
        lines += [f"## {run['users']} users: per page", "",
                  "| Page | Requests | Failures | Requests/s | p50 | p95 | p99 | max |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for row in sorted(run["stats"], key=lambda r: (r["Name"] == "Aggregated", r["Name"])):
            lines.append(
                f"| {row['Type']} {row['Name']} | {int(row['Request Count']):,} | "
                f"{int(row['Failure Count']):,} | {float(row['Requests/s']):.2f} | "
                f"{_ms(row, '50%')} | {_ms(row, '95%')} | {_ms(row, '99%')} | "
                f"{_ms(row, 'Max Response Time')} |"
            )
        if run["failures"]:
            lines += ["", "Failures:", ""]
            lines += [f"- {f['Method']} {f['Name']}: {f['Error']} ×{f['Occurrences']}"
                      for f in run["failures"]]  # fmt: skip
        if run["exceptions"]:
            lines += [
                "",
                "Flows ended early, not errors (an expected form missing from the page, "
                "or a step the portal refused with the message quoted):",
                "",
            ]
            lines += [f"- {e['Message']} ×{e['Count']}" for e in run["exceptions"]]
        lines.append("")
    lines += ["## check_invariants on the load database", "", "```", invariants.strip(), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="20", help="comma-separated user counts, one run each")
    parser.add_argument("--duration", default="2m")
    parser.add_argument("--scale", type=int, default=int(os.environ.get("LOAD_SCALE", "100000")))
    parser.add_argument("--report", default=str(ROOT / "bench" / "LOAD.md"))
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--tags", default="", help="only these locust tags (e.g. wizard)")
    args = parser.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    started, started_at, machine_line = time.perf_counter(), datetime.now(UTC), machine()
    log = ensure_services(DATABASE, REDIS)
    prepare_database(DATABASE, args.scale, False, log)
    subprocess.run(["redis-cli", "-n", "9", "FLUSHDB"], check=True, capture_output=True)  # noqa: S607
    pools = LOGS / "load-pools.json"
    sizes = write_pools(DATABASE, pools)
    env = server_env(
        DATABASE_URL=DATABASE,
        REDIS_URL=REDIS,
        PORTAL_VAR_DIR=str(LOGS),
        PORTAL_TRUSTED_PROXY_COUNT="1",
        PORTAL_BENCH_FLOOR="",
        LICENSE_SIGNING_KEY_FILE=str(LOGS / "license-signing-key.pem"),
    )
    env.pop("DATABASE_CONN_MAX_AGE", None)
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "signing_key", "create", "--path",
         env["LICENSE_SIGNING_KEY_FILE"]], cwd=ROOT, env=env, capture_output=True, check=False,
    )  # fmt: skip
    runs = []
    with (
        celery_worker(env, log=LOGS / "load-celery.log"),
        gunicorn(env, workers=2, log=LOGS / "load-gunicorn.log") as url,
    ):
        for users in [int(u) for u in args.users.split(",")]:
            print(f"== {users} users for {args.duration}", flush=True)
            # Fresh pools before each run: a serial an earlier run redeemed is refused now,
            # and counted as a failed code by the portal's rate limit.
            sizes = write_pools(DATABASE, pools)
            prefix = LOGS / f"load-{users}"
            runs.append(run_locust(url, users, args.duration, pools, prefix, args.tags))
            total = next(r for r in runs[-1]["stats"] if r["Name"] == "Aggregated")
            rate, failed = float(total["Requests/s"]), total["Failure Count"]
            print(f"   {rate:.1f} requests/s, {failed} failures, p95 {total['95%']} ms", flush=True)
        # Let the worker send what the runs queued, so a stale outbox row means a lost email.
        for _ in range(60):
            rows = psql(
                DATABASE, "SELECT count(*) FROM portal_outboundemail WHERE status <> 'sent'"
            )
            if rows[0][0] == "0":
                break
            time.sleep(2)
    check = subprocess.run(
        [sys.executable, "manage.py", "check_invariants"],
        cwd=ROOT, env={**env, "DJANGO_LOG_LEVEL": "WARNING"}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    invariants = f"$ python manage.py check_invariants   (exit {check.returncode})\n"
    invariants += check.stdout + check.stderr
    meta = {
        "Commit": commit(),
        "Date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "Machine": machine_line,
        "Stack": "gunicorn 2 sync workers (persistent connections), Celery worker 2 processes "
        "with its beat, PostgreSQL, Redis, locust on the same machine",
        "Data": f"seed_bench --scale {args.scale:,}; pools: {sizes}",
        "Duration per run": args.duration,
        "Total duration": f"{time.perf_counter() - started:.0f} s",
    }
    if args.note:
        meta["Also running"] = args.note
    Path(args.report).write_text(render(runs, meta, invariants))
    print(invariants)
    print(f"wrote {args.report}")


if __name__ == "__main__":
    main()
