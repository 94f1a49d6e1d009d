"""`make bench`: every benchmark in bench/ in one run, and bench/REPORT.md.

1. PostgreSQL and Redis: started as .ci/run starts them when they do not answer.
2. A fresh bench database (DATABASE_URL, default portal_bench) holding `seed_bench --scale
   BENCH_SCALE`. Seeding 100,000 licenses takes a minute or two, so the seeded database is kept
   as a template (portal_bench_tpl_<scale>_<hash of the migrations and seed_bench>) and copied
   for the next run; --reseed rebuilds it. Only data is reused, never a figure or a floor.
3. gunicorn (2 sync workers, persistent connections, the session floor mounted) and a Celery
   worker on Redis, for the whole run.
4. Each bench/bench_*.py in a subprocess: its figures (JSON lines, bench/results.py) are
   collected, its other output kept in var/bench/<name>.log and quoted in the report.

    make bench                           # BENCH_SCALE=100000, the full run (< 15 min)
    BENCH_QUICK=1 BENCH_SCALE=5000 make bench
    .venv/bin/python bench/run.py --only license_list,get_a_key
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import RESULTS_ENV, load_figures, render_report
from stack import (
    ROOT,
    celery_worker,
    create_database,
    ensure_services,
    gunicorn,
    have,
    server_env,
)

BENCH = ROOT / "bench"
LOGS = ROOT / "var" / "bench"
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/portal_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"


def script_args(name: str, scale: int, quick: bool) -> list[str] | str:
    """Arguments per script, full or quick; a string is the reason to skip it."""
    if name == "bench_downloads" and not have("nginx") and not Path("/usr/sbin/nginx").exists():
        return "nginx is not installed (apt-get install nginx); the download figures need it"
    if name == "bench_worker_recovery" and quick:
        return "quick run: takes two minutes by design (the stalled-conversion timeout)"
    return {
        "bench_downloads": ["--size-mib", "64" if quick else "512",
                            "--runs", "1" if quick else "3"],
        "bench_ef": ["--drawdowns", str(min(scale, 10_000 if quick else 20_000)),
                     "--service", "50" if quick else "200", "--runs", "3" if quick else "5"],
        "bench_partners": ["--customers", "500" if quick else "5000"],
        "bench_publish": ["--sizes", str(scale), "--notices-for", str(scale), "--per-org", "20"],
        "bench_vouchers": ["--quick"] if quick else [],
    }.get(name, [])  # fmt: skip


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def seed_hash() -> str:
    digest = hashlib.sha256()
    seed = ROOT / "portal" / "management" / "commands" / "seed_bench.py"
    files = [*sorted(ROOT.glob("*/migrations/*.py")), seed]
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def prepare_database(database_url: str, scale: int, reseed: bool, log: list[str]) -> None:
    """The bench database, fresh, seeded at `scale` (copied from the template when it exists)."""
    name = urlsplit(database_url).path.lstrip("/")
    template = f"portal_bench_tpl_{scale}_{seed_hash()}"
    template_url = with_database(database_url, template)
    exists = template in subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SELECT datname FROM pg_database"],  # noqa: S607
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    started = time.perf_counter()
    if reseed or not exists:
        create_database(template_url, fresh=True)
        env = {**os.environ, "DATABASE_URL": template_url, "DJANGO_LOG_LEVEL": "WARNING"}
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [*manage, "seed_bench", "--scale", str(scale)], cwd=ROOT, env=env, check=True
        )
        log.append(f"seeded {template} (scale {scale:,}) in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name], check=True)  # noqa: S603,S607
    copy = ["createdb", "-h", "127.0.0.1", "-U", "postgres", "-T", template, name]
    subprocess.run(copy, check=True)  # noqa: S603
    log.append(f"copied {template} to {name} in {time.perf_counter() - started:.0f} s")


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}; "
        f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    # The reports themselves are not the code measured.
    changed = git("status", "--porcelain", "--", ".", ":!bench/REPORT.md", ":!bench/LOAD.md")
    dirty = " (with uncommitted changes)" if changed else ""
    head, branch = git("rev-parse", "--short", "HEAD"), git("rev-parse", "--abbrev-ref", "HEAD")
    return f"{head} on {branch}{dirty}"


def run_script(path: Path, env: dict[str, str], args: list[str], timeout: int) -> tuple[str, str]:
    """Runs one benchmark; returns its status and its output without the figure lines."""
    log = LOGS / f"{path.stem}.log"
    started = time.perf_counter()
    try:
        result = subprocess.run(  # noqa: S603
            [sys.executable, str(path), *args], cwd=ROOT, env=env, capture_output=True,
            text=True, timeout=timeout, check=False,
        )  # fmt: skip
        out, err, code = result.stdout, result.stderr, result.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, code = f"timed out after {timeout} s", -1
    seconds = time.perf_counter() - started
    log.write_text(f"$ {path.name} {' '.join(args)}\n{out}\n--- stderr\n{err}")
    text = [line for line in out.splitlines() if not line.startswith('{"figure"')]
    status = f"ok in {seconds:.0f} s" if code == 0 else f"**failed** ({code}) in {seconds:.0f} s"
    if code != 0:
        text += ["--- stderr (last lines)", *err.strip().splitlines()[-12:]]
    return status, "\n".join(text[-40:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated names, e.g. license_list")
    parser.add_argument("--reseed", action="store_true", help="rebuild the seeded template")
    parser.add_argument("--report", default=str(BENCH / "REPORT.md"))
    parser.add_argument("--note", default="", help="a line for the report (what else ran)")
    args = parser.parse_args()
    scale = int(os.environ.get("BENCH_SCALE", "100000"))
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS
    LOGS.mkdir(parents=True, exist_ok=True)
    results = LOGS / "results.jsonl"
    results.write_text("")
    started, started_at, machine_line = time.perf_counter(), datetime.now(UTC), machine()
    log = ensure_services(database_url, redis_url)
    prepare_database(database_url, scale, args.reseed, log)

    env = server_env(DATABASE_URL=database_url, REDIS_URL=redis_url, PORTAL_VAR_DIR=str(LOGS))
    env.pop("DATABASE_CONN_MAX_AGE", None)  # the default: persistent connections
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "signing_key", "create", "--path",
         str(LOGS / "license-signing-key.pem")], cwd=ROOT, env=env, capture_output=True,
        check=False,
    )  # fmt: skip
    env["LICENSE_SIGNING_KEY_FILE"] = str(LOGS / "license-signing-key.pem")
    only = {f"bench_{n.strip().removeprefix('bench_')}" for n in args.only.split(",") if n.strip()}
    scripts = [p for p in sorted(BENCH.glob("bench_*.py")) if not only or p.stem in only]
    outputs: list[tuple[str, str, str]] = []
    with (
        celery_worker(env, log=LOGS / "celery.log") as worker,
        gunicorn(env, workers=2, log=LOGS / "gunicorn.log") as url,
    ):
        log.append(f"gunicorn (2 sync workers) at {url}, a Celery worker (2 processes) on Redis")
        for path in scripts:
            extra = script_args(path.stem, scale, quick)
            if isinstance(extra, str):
                outputs.append((path.stem, f"skipped: {extra}", ""))
                continue
            print(f"== {path.name} {' '.join(extra)}", flush=True)
            script_env = {
                **env,
                RESULTS_ENV: str(results),
                "BENCH_BASE_URL": url,
                # A figure that must not share the machine with the worker pauses it (SIGSTOP).
                "BENCH_WORKER_PID": str(worker.pid),
                "BENCH_SCRIPT": path.name,
                "BENCH_SCALE": str(scale),
                "BENCH_QUICK": "1" if quick else "",
            }
            status, text = run_script(path, script_env, extra, timeout=600)
            print(f"   {status}", flush=True)
            outputs.append((path.stem, status, text))

    figures = load_figures(results)
    meta = {
        "Commit": commit(),
        "Date": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "Machine": machine_line,
        "Scale": f"{scale:,} licenses ({'quick' if quick else 'full'} run)",
        "Total duration": f"{time.perf_counter() - started:.0f} s",
    }
    if args.note:
        meta["Also running"] = args.note
    notes = log + [f"`{name}`: {status}" for name, status, _text in outputs]
    report = render_report(figures, meta, notes)
    appendix = ["## Other output of each benchmark", ""]
    for name, _status, text in outputs:
        if text.strip():
            appendix += [f"### {name}", "", "```", text, "```", ""]
    Path(args.report).write_text(report + "\n" + "\n".join(appendix))
    print(f"wrote {args.report}: {len(figures)} figures in {meta['Total duration']}")
    (LOGS / "meta.json").write_text(json.dumps(meta))


if __name__ == "__main__":
    main()
