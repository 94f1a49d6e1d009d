"""One HTTP client for every page figure and its floor (no Django here).

`hammer` runs `concurrency` threads, each with its own keep-alive connection, requesting one
path for a fixed time: requests per second, p50 and p95. The page and its floor are measured
with the same client, connections and concurrency, so their ratio compares the server only.
`interleaved` requests several pages in turn, one at a time, to compare their cost pair by pair.
`form_fields` reads a form out of a page the way a browser would submit it.
"""

from __future__ import annotations

import http.client
import itertools
import statistics
import threading
import time
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0

    @property
    def p95(self) -> float:
        return self.percentile(0.95)


def unique(path: str, number: int, run: str) -> str:
    """`path` with a query parameter of its own (`run`: a measurement's random id, `number`: the
    request's), a page that no cache holds (My licenses' page cache keys the whole query string):
    rendered for this request."""
    return f"{path}{'&' if '?' in path else '?'}bench-request={run}-{number}"


def hammer(
    base_url: str,
    path: str,
    *,
    cookie: str = "",
    concurrency: int = 8,
    seconds: float = 5.0,
    warmup: float = 1.0,
    min_requests: int = 20,
    rendered: bool = False,
) -> LoadResult:
    """Requests `path` from `concurrency` keep-alive connections after a warmup.

    The window lasts `seconds`, longer if fewer than `min_requests` completed by then (at most
    three times as long), so a slow page still gets a median; a request counts when it completes
    inside the window, whenever it started. With `rendered`, each request asks for a query
    string of its own (`unique`).
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = {"Cookie": cookie} if cookie else {}
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    measure_from = time.perf_counter() + warmup
    window = {"end": measure_from + seconds}
    limit = measure_from + 3 * seconds
    numbers = itertools.count()
    run = uuid.uuid4().hex[:12]  # each call's own: the same path is measured more than once

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=120)
        while True:
            began = time.perf_counter()
            if began >= window["end"]:
                break
            try:
                asked = unique(path, next(numbers), run) if rendered else path
                connection.request("GET", asked, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
                if response.will_close:
                    connection.close()
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=120)
            ended = time.perf_counter()
            with lock:
                if ended > window["end"] and len(latencies) < min_requests:
                    window["end"] = min(limit, ended + 0.5)
                if measure_from <= ended <= window["end"]:
                    if ok:
                        latencies.append((ended - began) * 1000)
                    else:
                        errors[0] += 1
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(len(latencies), errors[0], window["end"] - measure_from, latencies)


def interleaved(
    base_url: str,
    paths: list[tuple[str, str]],
    *,
    rounds: int = 200,
    warmup: int = 10,
    rendered: bool = False,
) -> list[LoadResult]:
    """Requests each (path, cookie) in turn, one request at a time, for `rounds` rounds (with
    `rendered`, each request a query string of its own: `unique`).

    One keep-alive connection per path and nothing else in flight: each latency is the server's
    time for that page alone (no queue behind a busy worker), and the pages of one round are
    measured within milliseconds of each other, so a shared machine's changing load falls on
    all of them alike. Pages are compared pair by pair, as the issue's figures are.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    connections = [http.client.HTTPConnection(host, port, timeout=120) for _ in paths]
    latencies: list[list[float]] = [[] for _ in paths]
    errors = [0 for _ in paths]
    started = time.perf_counter()
    run = uuid.uuid4().hex[:12]
    for number in range(warmup + rounds):
        for index, (path, cookie) in enumerate(paths):
            connection = connections[index]
            began = time.perf_counter()
            try:
                asked = unique(path, number, run) if rendered else path
                connection.request("GET", asked, headers={"Cookie": cookie} if cookie else {})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
            elapsed = (time.perf_counter() - began) * 1000
            if number >= warmup:
                if ok:
                    latencies[index].append(elapsed)
                else:
                    errors[index] += 1
    seconds = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return [
        LoadResult(len(times), failed, seconds, times)
        for times, failed in zip(latencies, errors, strict=True)
    ]


def paired_ratio(page: LoadResult, floor: LoadResult) -> float:
    """The median of page ÷ floor over the rounds of `interleaved`, request by request."""
    return statistics.median(
        a / b for a, b in zip(page.latencies_ms, floor.latencies_ms, strict=False) if b
    )


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, object]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._select_explicit = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"),
                               "fields": []})  # fmt: skip
            return
        if not self.forms:
            return
        fields: list[tuple[str, str]] = self.forms[-1]["fields"]  # type: ignore[assignment]
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind == "radio":
                # The checked choice, else the first, as a person picking one would.
                if "checked" in a:
                    fields[:] = [(n, v) for n, v in fields if n != name]
                if "checked" in a or all(n != name for n, _v in fields):
                    fields.append((name, a.get("value", "on")))
            elif kind == "checkbox":
                if "checked" in a:
                    fields.append((name, a.get("value", "on")))
            elif kind not in {"submit", "button", "image", "file"}:
                fields.append((name, a.get("value", "")))
        elif tag == "select" and name:
            self._select, self._select_value, self._select_explicit = name, None, False
        elif tag == "option" and self._select is not None:
            # The selected option, else the first with a value (not a "choose…" placeholder).
            value = a.get("value", "")
            if "selected" in a or (not self._select_explicit and not self._select_value):
                fields[:] = [(n, v) for n, v in fields if n != self._select]
                self._select_value = value
                self._select_explicit = "selected" in a
                fields.append((self._select, value))
        elif tag == "textarea" and name:
            self._textarea = name
            fields.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms:
            fields: list[tuple[str, str]] = self.forms[-1]["fields"]  # type: ignore[assignment]
            name, value = fields[-1]
            fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _matches(name: str, wanted: str) -> bool:
    if wanted.endswith("-"):  # a form prefix: "registration-"
        return name.startswith(wanted)
    return name == wanted or name.endswith("-" + wanted)  # "serial" is "serial-serial"


def form_fields(html: str, *, containing: str) -> dict[str, str]:
    """The fields (their defaults) of the first POST form with a field named `containing`,
    or prefixed with it (a wizard step's `step-field`)."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        fields: list[tuple[str, str]] = form["fields"]  # type: ignore[assignment]
        if str(form["method"]).lower() == "post" and any(
            _matches(name, containing) for name, _value in fields
        ):
            return dict(fields)
    raise LookupError(f"no POST form with a field named like {containing!r}")
