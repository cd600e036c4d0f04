"""One line per benchmark run in benchmarks/RESULTS.md, with the date, the machine and the versions."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from search.tracking.provenance import library_versions

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\n| benchmark | date | figures | run | machine |\n|---|---|---|---|---|\n"


def record(benchmark: str, figures: str, run: str, libraries: tuple[str, ...] = ("tensorflow", "keras-tuner")) -> str:
    """Print the line and append it to RESULTS.md."""
    versions = library_versions()
    machine = f"{os.cpu_count()} CPUs, " + ", ".join(f"{name} {versions.get(name) or version(name)}" for name in libraries)
    line = f"| {benchmark} | {time.strftime('%Y-%m-%d')} | {figures} | {run} | {machine} |"
    print(line)
    if not RESULTS.exists():
        RESULTS.write_text(HEADER)
    with RESULTS.open("a") as out:
        out.write(line + "\n")
    return line


def timed(action: Callable[[], object]) -> float:
    """Seconds `action()` takes, by the monotonic clock."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
