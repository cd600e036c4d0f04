"""What the store check costs `archsearch compare`: `check_store` (a read-only `PRAGMA quick_check` of the
whole sqlite file, which every command runs before MLflow or the fast reader touches the store) against the
read and comparison it guards, on a store of 10,000 trial runs (goal: the check adds under 10%).

Fills the store as `compare_speed.py` does, then alternates the two timings over several rounds and takes
the medians. Prints the figures and appends them to benchmarks/RESULTS.md.

    uv run python benchmarks/store_check.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from compare_speed import fill  # noqa: E402
from results import record, timed  # noqa: E402

from search.orchestration.report import load_comparison  # noqa: E402
from search.tracking.store import check_store  # noqa: E402

RUNS, ROUNDS = 10_000, 7


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "store.db"
        fill(f"sqlite:///{db}", RUNS)
        checks, compares = [], []
        for _ in range(ROUNDS):
            checks.append(timed(lambda: check_store(db)))
            compares.append(timed(lambda: load_comparison(f"sqlite:///{db}", ["bench"])))
        size = db.stat().st_size
    check, compare = statistics.median(checks), statistics.median(compares)
    share = check / (compare - check)  # load_comparison runs the check once itself
    print(f"{RUNS:,} runs, {size / 2**20:.0f} MiB: check {check * 1000:.0f} ms, compare {compare * 1000:.0f} ms", flush=True)
    record(
        "store check",
        f"{RUNS:,} runs ({size / 2**20:.0f} MiB): check_store {check * 1000:.0f} ms ÷ the rest of compare's read "
        f"{(compare - check) * 1000:.0f} ms = {share:.3f} (medians of {ROUNDS}; goal < 0.10)",
        "sqlite store",
        ("mlflow", "pandas"),
    )
    sys.exit(0 if share < 0.10 else 1)


if __name__ == "__main__":
    main()
