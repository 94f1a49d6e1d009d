"""The benchmark report: ratios against the floor, targets met or not, one table row each."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from results import Figure, Target, emit, load_figures, render_report


def test_ratio_is_value_over_floor_and_targets_apply_to_ratio_or_value() -> None:
    page = Figure("list", 50, "rps", floor_name="floor", floor_value=200,
                  target={"op": ">=", "threshold": 0.5, "on": "ratio"})  # fmt: skip
    assert page.ratio == pytest.approx(0.25)
    assert page.met is False
    queries = Figure("wizard", 18, "queries", target={"op": "<=", "threshold": 20, "on": "value"})
    assert queries.ratio is None
    assert queries.met is True
    assert Figure("no floor, no target", 1, "s").met is None


def test_emitted_figures_render_as_a_table(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv("BENCH_RESULTS", str(results))
    emit("Export", 0.9, "s", floor_name="psql \\copy", floor_value=0.3, target=Target("<=", 3))
    emit("Slowest", 1.1, "s", floor_name="up", floor_value=0.15, target=Target("<=", 2, on="value"))
    emit("Dashboard", 120, "rps", floor_name="session floor", floor_value=400, note="p50 60 ms")
    assert '"figure": "Export"' in capsys.readouterr().out
    figures = load_figures(results)
    report = render_report(figures, {"Commit": "abc123"}, ["seeded in 3 s"])
    assert "- **Commit**: abc123" in report
    assert "| Export | 0.90 s | psql \\copy: 0.30 s | 3.00 | ≤ 3 × floor | yes |" in report
    assert "| Slowest | 1.10 s | up: 0.15 s | 7.33 | ≤ 2 s | yes |" in report
    assert "| Dashboard | 120 rps | session floor: 400 rps | 0.30 | – | – |" in report
    assert "*Dashboard*: p50 60 ms" in report
    assert "- seeded in 3 s" in report


def test_interleaved_requests_pages_in_turn_and_pairs_their_ratios() -> None:
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from httpkit import interleaved, paired_ratio

    order: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no delayed-ACK stalls between headers and body

        def do_GET(self) -> None:
            order.append(self.path)
            time.sleep(0.004 if self.path == "/slow" else 0.002)
            self.send_response(200 if self.headers.get("Cookie") == "c=1" else 403)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        fast, slow = interleaved(url, [("/fast", "c=1"), ("/slow", "c=1")], rounds=20, warmup=2)
        refused = interleaved(url, [("/fast", "c=0")], rounds=3, warmup=0)[0]
    finally:
        server.shutdown()
    assert order[:6] == ["/fast", "/slow"] * 3  # one at a time, in turn
    assert len(fast.latencies_ms) == len(slow.latencies_ms) == 20  # the warmup is not counted
    assert 1.2 < paired_ratio(slow, fast) < 4
    assert refused.errors == 3 and not refused.latencies_ms
