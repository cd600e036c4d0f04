"""CLI latency: `archsearch --help` and `archsearch validate` as a user runs them, a new process each time
(goal: under 0.5 s each). Median of 7 runs after one warm-up (the first run after a build fills caches).

    uv run python benchmarks/cli_latency.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results import record

REPO = Path(__file__).resolve().parents[1]
RUNS = 7


def median_seconds(command: list[str]) -> float:
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    exe = shutil.which("archsearch") or str(Path(sys.executable).with_name("archsearch"))
    help_s = median_seconds([exe, "--help"])
    validate_s = median_seconds([exe, "validate", "spaces/vgg_depth.yaml"])
    record("CLI latency", f"`archsearch --help` {help_s:.3f} s, `archsearch validate spaces/vgg_depth.yaml` {validate_s:.3f} s "
           "(goal < 0.5 s each)", f"median of {RUNS} new processes", ("typer", "pydantic"))
    sys.exit(0 if max(help_s, validate_s) < 0.5 else 1)


if __name__ == "__main__":
    main()
