"""Figures as JSON lines, and the report that puts each beside its floor (no Django here).

A benchmark calls `emit(...)` once per figure. The line goes to stdout and, when the runner set
BENCH_RESULTS, is appended to that file; `bench/run.py` then renders every line of the run into
bench/REPORT.md with `render_report`. The ratio is always value ÷ floor, computed here, so that
every figure's ratio means the same thing; the target says whether it applies to the value or to
the ratio, and which way is better.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_ENV = "BENCH_RESULTS"


@dataclass(frozen=True)
class Target:
    """A goal: `on` ("value" or "ratio") compared with `op` ("<=" or ">=") to `threshold`."""

    op: str
    threshold: float
    on: str = "ratio"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        subject = ratio if self.on == "ratio" else value
        if subject is None:
            return None
        return subject <= self.threshold if self.op == "<=" else subject >= self.threshold

    def __str__(self) -> str:
        sign = "≤" if self.op == "<=" else "≥"
        number = f"{self.threshold:g}"
        return f"{sign} {number} × floor" if self.on == "ratio" else f"{sign} {number}"


@dataclass
class Figure:
    figure: str
    value: float
    unit: str
    floor_name: str = ""
    floor_value: float | None = None
    target: dict[str, Any] | None = None
    note: str = ""
    bench: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.floor_value is None or self.floor_value == 0:
            return None
        return self.value / self.floor_value

    @property
    def goal(self) -> Target | None:
        return Target(**self.target) if self.target else None

    @property
    def met(self) -> bool | None:
        goal = self.goal
        return goal.met(self.value, self.ratio) if goal else None


def emit(
    figure: str,
    value: float,
    unit: str,
    *,
    floor_name: str = "",
    floor_value: float | None = None,
    target: Target | None = None,
    note: str = "",
    **extra: Any,
) -> Figure:
    """Prints one figure as a JSON line and appends it to $BENCH_RESULTS when set."""
    item = Figure(
        figure=figure,
        value=float(value),
        unit=unit,
        floor_name=floor_name,
        floor_value=None if floor_value is None else float(floor_value),
        target=asdict(target) if target else None,
        note=note,
        bench=Path(os.environ.get("BENCH_SCRIPT", "")).name,
        extra=extra,
    )
    line = json.dumps({**asdict(item), "ratio": item.ratio, "met": item.met}, ensure_ascii=False)
    print(line, flush=True)
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    return item


def load_figures(path: Path) -> list[Figure]:
    figures = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            data.pop("ratio", None)
            data.pop("met", None)
            figures.append(Figure(**data))
    return figures


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(value: float | None, unit: str) -> str:
    return "–" if value is None else f"{_number(value)} {unit}".strip()


def render_table(figures: Iterable[Figure]) -> str:
    lines = [
        "| Figure | Value | Floor (same run) | Ratio | Target | Met? |",
        "|---|---|---|---|---|---|",
    ]
    for item in figures:
        floor = (
            f"{item.floor_name}: {_cell(item.floor_value, item.unit)}" if item.floor_name else "–"
        )
        ratio = "–" if item.ratio is None else f"{item.ratio:.2f}"
        met = {True: "yes", False: "**no**", None: "–"}[item.met]
        goal = item.goal
        # A target on the value itself is in its unit ("≤ 2 s"): beside a ratio of 7.43, a bare
        # "≤ 2" read as a target on the ratio, missed.
        target = "–" if goal is None else f"{goal} {item.unit}" if goal.on == "value" else goal
        lines.append(
            f"| {item.figure} | {_cell(item.value, item.unit)} | {floor} | {ratio} | "
            f"{target} | {met} |"
        )
    return "\n".join(lines)


def render_report(figures: list[Figure], meta: dict[str, str], notes: list[str]) -> str:
    head = ["# Benchmark report", ""]
    head += [f"- **{key}**: {value}" for key, value in meta.items()]
    body = ["", render_table(figures), ""]
    with_notes = [item for item in figures if item.note]
    if with_notes:
        body += ["## Notes per figure", ""]
        body += [f"- *{item.figure}*: {item.note}" for item in with_notes]
        body.append("")
    if notes:
        body += ["## Run log", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(head + body)
