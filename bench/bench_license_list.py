"""Figures for the dashboard and My licenses, over HTTP against the gunicorn of `make bench`:
requests/s and p50 at concurrency 8 beside the session floor; the list at 1,000 and at
BENCH_SCALE licenses, a deep page and a text search compared with page 1 one request at a time,
in turn (bench/httpkit.py: interleaved), and at c=8 for the record; and the CSV export beside
`psql \\copy` of the same rows.

    make bench                      # everything; or, with the stack of bench/run.py running:
    BENCH_BASE_URL=http://127.0.0.1:PORT .venv/bin/python bench/bench_license_list.py

My licenses is measured both as a member sees it again while nothing it shows has changed (its
content from the page cache, licensing/listcache.py) and rendered (each request a query string
of its own, which no cache holds): the comparisons of pages with pages are of rendered pages.

The data set is seed_bench's: bench-large@ owns BENCH_SCALE licenses, bench-small@ 1,000.
Every page and its floor go through the same client (bench/httpkit.py: threads with keep-alive
connections), in the same run, interleaved, so their ratio compares the server only.
"""

from __future__ import annotations

import html
import http.client
import os
import re
import subprocess
import time
from urllib.parse import urlsplit

from common import QUICK, SCALE, Target, base_url, emit, session_cookie
from django.db import connection
from httpkit import LoadResult, hammer, interleaved, paired_ratio

from licensing.models import CustomField
from portal.management.commands.seed_bench import LARGE_ADMIN, SMALL_ADMIN
from portal.models import Organization

SECONDS = 4.0 if QUICK else 6.0
FLOOR = "session floor"


def alternate(
    url: str, paths: list[str], cookie: str, rendered: frozenset[str] = frozenset()
) -> list[LoadResult]:
    """Each path measured twice, the paths alternating; the better run of each. On a shared
    machine the load changes from one run to the next: pages compared by their ratio are
    measured the same way, side by side. The paths in `rendered` are asked with a query string
    of their own each time: rendered, never from My licenses' page cache."""
    runs: list[list[LoadResult]] = [[] for _ in paths]
    for _ in range(1 if QUICK else 2):
        for path, results in zip(paths, runs, strict=True):
            results.append(
                hammer(url, path, cookie=cookie, seconds=SECONDS, rendered=path in rendered)
            )
    best = [max(results, key=lambda r: r.rps) for results in runs]
    for path, result in zip(paths, best, strict=True):
        if result.errors or not result.requests:
            raise SystemExit(f"{path}: {result.errors} errors in {result.requests} requests")
    return best


def pair(url: str, path: str, cookie: str) -> tuple[LoadResult, LoadResult]:
    """The page and the floor, each measured twice, alternating; the better run of each."""
    page, floor = alternate(url, [path, "/bench-floor/"], cookie)
    return page, floor


NEXT_LINK = re.compile(r'<a class="page-link" href="(\?[^"]+)">Next</a>')


def next_link(url: str, path: str, cookie: str) -> str:
    """The path of the Next link on the page at `path`."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    body = response.read().decode()
    found = NEXT_LINK.search(body)
    if response.status != 200 or not found:
        raise SystemExit(f"{path}: {response.status}, no Next link")
    return "/licenses/" + html.unescape(found.group(1))


def export_seconds(url: str, cookie: str) -> tuple[float, int]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    started = time.perf_counter()
    conn.request("GET", "/licenses/export.csv", headers={"Cookie": cookie})
    response = conn.getresponse()
    size = 0
    while chunk := response.read(1 << 16):
        size += len(chunk)
    seconds = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"export answered {response.status}")
    return seconds, size


def copy_seconds(organization: Organization) -> tuple[float, int]:
    """`psql \\copy` of the export's rows: the same columns, joins and custom values, to CSV."""
    fields = list(CustomField.objects.filter(organization=organization).order_by("position", "pk"))
    custom = "".join(f", cf{f.pk}.value" for f in fields)
    joins = "".join(
        f" LEFT JOIN licensing_customfieldvalue cf{f.pk}"
        f" ON cf{f.pk}.license_id = l.id AND cf{f.pk}.field_id = {f.pk}"
        for f in fields
    )
    query = (
        "SELECT l.key, p.name, p.sku, v.version, l.quantity, l.host_id, l.status,"  # noqa: S608
        " l.maintenance_start, l.maintenance_end, o.name, o.account_number, l.source,"
        " l.source_ref, r.company, r.technical_name, r.technical_email, l.issued_at"
        f"{custom} FROM licensing_license l"
        " JOIN licensing_productversion v ON v.id = l.version_id"
        " JOIN licensing_product p ON p.id = v.product_id"
        " JOIN portal_organization o ON o.id = l.owner_id"
        " LEFT JOIN licensing_supportregistration r ON r.id = l.registration_id"
        f"{joins} WHERE l.owner_id = {organization.pk} ORDER BY l.maintenance_end, l.id"
    )
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or "")}
    command = [
        "psql", "-X", "-q", "-h", str(db["HOST"] or "127.0.0.1"), "-p", str(db["PORT"] or 5432),
        "-U", str(db["USER"]), "-d", str(db["NAME"]),
        "-c", f"\\copy ({query}) TO STDOUT WITH (FORMAT csv, HEADER)",
    ]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, check=True)  # noqa: S603
    return time.perf_counter() - started, len(result.stdout)


def main() -> None:
    url = base_url()
    large, small = session_cookie(LARGE_ADMIN), session_cookie(SMALL_ADMIN)
    scale = f"{SCALE:,}"

    dashboard, floor = pair(url, "/dashboard/", small)
    emit("Dashboard, requests/s at c=8", dashboard.rps, "rps",
         floor_name=FLOOR, floor_value=floor.rps, note=f"p50 {dashboard.p50:.0f} ms")  # fmt: skip

    # The same list twice: as a member sees it again while nothing it shows has changed (from
    # the page cache, licensing/listcache.py), and rendered (a first visit, or after a change).
    rendered_list = "/licenses/?"
    page, rendered, layout, floor = alternate(
        url, ["/licenses/", rendered_list, "/bench-floor/layout/", "/bench-floor/"], small,
        rendered=frozenset({rendered_list}),
    )  # fmt: skip
    emit("License list, 1,000 licenses: requests/s at c=8", page.rps, "rps",
         floor_name=FLOOR, floor_value=floor.rps, target=Target(">=", 0.5),
         note="seen again with nothing changed: the content from the page cache, the rest of "
         f"the page rendered; p50 {page.p50:.0f} ms")  # fmt: skip
    emit("License list, 1,000 licenses, rendered: requests/s at c=8", rendered.rps, "rps",
         floor_name=FLOOR, floor_value=floor.rps,
         note="a first visit or after a change: each request a query string of its own, "
         f"never in the page cache; p50 {rendered.p50:.0f} ms")  # fmt: skip
    emit("The layout alone (base.html, no content): requests/s at c=8", layout.rps, "rps",
         floor_name=FLOOR, floor_value=floor.rps,
         note=f"what every page renders besides its content; p50 {layout.p50:.0f} ms")  # fmt: skip
    emit("License list, 1,000 licenses: p50 at c=8", page.p50, "ms",
         floor_name=FLOOR, floor_value=floor.p50)  # fmt: skip

    last_page = max(2, min(1000, SCALE // 100))  # within the current licenses (~90 %)
    # A deep page as a reader reaches it: the Next link of the page before (its cursor).
    deep_path = next_link(url, f"/licenses/?page={last_page - 1}", large)
    search_path = "/licenses/?q=host-00042"
    # Pages compared with pages: one request at a time, in turn, round after round. A p50 at
    # c=8 is mostly the wait behind 2 busy sync workers and moved by ±30 % between runs of the
    # same code on this shared machine; served one at a time, each latency is the page's own.
    small_page, big, deep, jump, search = interleaved(
        url,
        [("/licenses/", small), ("/licenses/", large), (deep_path, large),
         (f"/licenses/?page={last_page}", large), (search_path, large)],
        rounds=40 if QUICK else 150,
        rendered=True,  # what the pages cost to render, not what the page cache holds
    )  # fmt: skip
    for result in (small_page, big, deep, jump, search):
        if result.errors:
            raise SystemExit(f"{result.errors} errors in the interleaved list requests")
    how = "rendered (never from the page cache), one request at a time, the pages in turn"
    emit(f"License list p50, {scale} ÷ 1,000 licenses", big.p50, "ms",
         floor_name="list at 1,000", floor_value=small_page.p50, target=Target("<=", 1.1),
         note=f"{how}; median of the {len(big.latencies_ms)} pairs' ratios "
         f"{paired_ratio(big, small_page):.2f}")  # fmt: skip
    emit(f"License list page {last_page} at {scale}: p50", deep.p50, "ms",
         floor_name="page 1", floor_value=big.p50, target=Target("<=", 1.1),
         note=f"reached by the Next link of page {last_page - 1} ({deep_path[:40]}…); {how}; "
         f"median of the pairs' ratios {paired_ratio(deep, big):.2f}")  # fmt: skip
    emit(f"License list page {last_page} at {scale} by its number alone: p50", jump.p50,
         "ms", floor_name="page 1", floor_value=big.p50,
         note="?page=N without a cursor (an edited URL): OFFSET skips the rows before")  # fmt: skip
    emit(f"License list text search at {scale}: p50", search.p50, "ms",
         floor_name="page 1", floor_value=big.p50, target=Target("<=", 1.1),
         note=f"q=host-00042 (a host ID substring; matches ~0.03 % of the licenses); {how}; "
         f"median of the pairs' ratios {paired_ratio(search, big):.2f}")  # fmt: skip
    # The same pages under load, for the record: c=8 against 2 workers (queueing included).
    at_c8 = ["/licenses/", deep_path, search_path]
    big8, deep8, search8 = alternate(url, at_c8, large, rendered=frozenset(at_c8))
    emit(f"License list at {scale}, page 1 / page {last_page} / search: p50 at c=8",
         big8.p50, "ms", note=f"rendered; page {last_page} {deep8.p50:.0f} ms, "
         f"search {search8.p50:.0f} ms; "
         f"{big8.rps:.0f} / {deep8.rps:.0f} / {search8.rps:.0f} rps")  # fmt: skip

    organization = Organization.objects.get(memberships__user__email=LARGE_ADMIN)
    seconds, size = export_seconds(url, large)
    floor_seconds, floor_size = copy_seconds(organization)
    emit(f"CSV export, {scale} licenses (HTTP, streamed)", seconds, "s",
         floor_name="psql \\copy of the same rows", floor_value=floor_seconds,
         target=Target("<=", 3),
         note=f"{size / 1e6:.1f} MB over HTTP; \\copy wrote {floor_size / 1e6:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
