"""Figures for reading voucher codes: the largest input the Voucher center accepts, parsed.

    .venv/bin/python bench/bench_voucher_parsing.py

No database is touched: it times the parsing alone (splitting typed text into codes, reading an
uploaded CSV), which runs before any lookup. Each figure is the best of several runs, printed
beside its floor: one `str.split()` over the same input, the least any parser must do. It also
times the 320 KB text from the report ("- " * 160000), which the form now refuses on its size
before splitting; its split time shows what the refusal no longer has to pay.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402

from licensing.codes import generate_code  # noqa: E402
from vouchers.forms import (  # noqa: E402
    MAX_CODES,
    MAX_FILE_BYTES,
    MAX_TEXT_CHARS,
    codes_from_csv,
    split_codes,
    unique_entries,
)

RUNS = 5


def best(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def largest_text() -> str:
    codes = "\n".join(generate_code().replace("-", " ") for _ in range(MAX_CODES))
    padding = MAX_TEXT_CHARS - len(codes) - 1
    return codes + "\n" + ("- " * padding)[:padding]


def largest_csv() -> bytes:
    filler = "- " * ((MAX_FILE_BYTES // MAX_CODES - 40) // 2)
    return (
        "code,note\n" + "".join(f"{generate_code()},{filler}\n" for _ in range(MAX_CODES))
    ).encode()


def main() -> None:
    text = largest_text()
    data = largest_csv()
    report = "- " * 160_000
    rows = [
        (
            f"typed text, {len(text):,} chars, {MAX_CODES:,} codes",
            best(lambda: unique_entries(split_codes(text))),
            best(text.split),
        ),
        (
            f"CSV upload, {len(data):,} bytes, {MAX_CODES:,} codes",
            best(lambda: codes_from_csv(SimpleUploadedFile("c.csv", data, "text/csv"))),
            best(lambda: data.decode().split()),
        ),
        (
            f"report's text, {len(report):,} chars (refused on size)",
            best(lambda: split_codes(report)),
            best(report.split),
        ),
    ]
    print(f"{'input':<52} {'parse':>10} {'floor':>10}")
    for name, parse, floor in rows:
        print(f"{name:<52} {parse * 1000:>8.1f}ms {floor * 1000:>8.1f}ms")


if __name__ == "__main__":
    main()
