"""What a new sqlite store costs: `create_sqlite_store` (a copy of the empty store migrated once per MLflow
version in the user's cache) against MLflow building one itself (its few dozen migrations), alternated over
several rounds, medians (goal: the copy at most a tenth of the migrations). Every new `mlruns/`, every
`archsearch server` on a new file, and most tests pay this once.

    uv run python benchmarks/new_store.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from mlflow.tracking import MlflowClient  # noqa: E402
from results import record, timed  # noqa: E402

from search.tracking.client import create_sqlite_store  # noqa: E402

ROUNDS = 7


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["XDG_CACHE_HOME"] = str(Path(folder) / "cache")  # the template is built in the first round
        first = timed(lambda: create_sqlite_store(Path(folder) / "first" / "mlflow.db"))
        copies, migrations = [], []
        for i in range(ROUNDS):
            copies.append(timed(lambda: create_sqlite_store(Path(folder) / f"copy{i}" / "mlflow.db")))
            migrations.append(timed(lambda: MlflowClient(f"sqlite:///{Path(folder) / f'migrated{i}.db'}").search_experiments(max_results=1)))
    copy, migrate = statistics.median(copies), statistics.median(migrations)
    ratio = copy / migrate
    record(
        "new store",
        f"create_sqlite_store {copy * 1000:.0f} ms ÷ MLflow's migrations {migrate * 1000:.0f} ms = {ratio:.3f} "
        f"(medians of {ROUNDS}; goal <= 0.10); the first store, which builds the template, {first * 1000:.0f} ms",
        "new sqlite store",
        ("mlflow", "sqlalchemy"),
    )
    sys.exit(0 if ratio <= 0.10 else 1)


if __name__ == "__main__":
    main()
