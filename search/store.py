"""Where runs live, and reading trial runs back fast. Imports no mlflow.

`import mlflow` alone costs about 3 s here, and `MlflowClient.search_runs` builds an ORM object per
param, tag and metric (about 1 ms per run), so `archsearch compare` reads the default sqlite store
directly: read-only, a few column queries over MLflow's tables. Other stores (a tracking server, a
PostgreSQL backend), or a schema this reader does not know, go through MlflowClient instead
(`search.tracking`); a test checks that both give the same frame.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

DEFAULT_STORE = Path("mlruns")
PARENT_TAG = "mlflow.parentRunId"
ROLE_TAG = "archsearch.role"  # "search" on parent runs, "trial" on nested ones


class TrackingError(LookupError):
    """What was asked of the store is not in it (no store, an unknown experiment, no trials)."""


def default_tracking_uri(store: Path = DEFAULT_STORE) -> str:
    return f"sqlite:///{(store / 'mlflow.db').resolve()}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else the local sqlite store under ./mlruns."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(urlparse(uri).path)) if uri.startswith("sqlite:////") else Path(uri[len("sqlite:///") :])


def read_trials(tracking_uri: str, experiments: list[str]) -> pd.DataFrame:
    """Every trial run of the named experiments as one row each (params.*, metrics.*, tags.* columns,
    oldest first), with an `experiment` column."""
    db = sqlite_path(tracking_uri)
    if db is not None:
        if not db.is_file():
            raise TrackingError(f"no MLflow store at {db} (run a search first, or pass --tracking-uri)")
        try:
            return _joined(_read_sqlite(db, tracking_uri, experiments), experiments)
        except sqlite3.DatabaseError:  # a schema this reader does not know: let MLflow's client read it
            pass
    from search.tracking import experiment_runs

    return _joined([experiment_runs(tracking_uri, name, "trial").assign(experiment=name) for name in experiments], experiments)


def _joined(frames: list[pd.DataFrame], experiments: list[str]) -> pd.DataFrame:
    trials = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if trials.empty:
        raise TrackingError(f"no trial runs in experiment(s) {', '.join(experiments)}")
    return trials


TRIAL_IDS = f"""
    SELECT runs.run_uuid FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid
    WHERE runs.experiment_id = :experiment AND runs.lifecycle_stage = 'active'
      AND tags.key = '{ROLE_TAG}' AND tags.value = 'trial'
"""
TRIAL_QUERIES = {
    "runs": f"SELECT run_uuid, name, status, start_time, end_time FROM runs WHERE run_uuid IN ({TRIAL_IDS}) ORDER BY start_time",
    "params": f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({TRIAL_IDS})",
    "metrics": f"SELECT run_uuid, key, CASE WHEN is_nan THEN NULL ELSE value END FROM latest_metrics WHERE run_uuid IN ({TRIAL_IDS})",
    "tags": f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({TRIAL_IDS})",
}


def _read_sqlite(db: Path, tracking_uri: str, experiments: list[str]) -> list[pd.DataFrame]:
    connection = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        ids = dict(connection.execute("SELECT name, experiment_id FROM experiments WHERE lifecycle_stage = 'active'").fetchall())
        frames = []
        for name in experiments:
            if name not in ids:
                known = ", ".join(sorted(ids)) or "none"
                raise TrackingError(f"no experiment {name!r} in {tracking_uri}; known: {known}")
            frames.append(_experiment_trials(connection, ids[name]).assign(experiment=name))
        return frames
    finally:
        connection.close()


def _experiment_trials(connection: sqlite3.Connection, experiment_id: int) -> pd.DataFrame:
    def rows(query: str, columns: list[str]) -> pd.DataFrame:
        return pd.DataFrame(connection.execute(query, {"experiment": experiment_id}).fetchall(), columns=columns)

    runs = rows(TRIAL_QUERIES["runs"], ["run_id", "run_name", "status", "start_time", "end_time"]).set_index("run_id")
    runs.insert(1, "experiment_id", str(experiment_id))  # as MLflow's client gives it
    columns = [runs]
    for prefix in ("params", "metrics", "tags"):
        long = rows(TRIAL_QUERIES[prefix], ["run_id", "key", "value"])
        if prefix == "metrics":
            long["value"] = long["value"].astype(float)
        wide = long.pivot(index="run_id", columns="key", values="value")
        wide.columns = [f"{prefix}.{key}" for key in wide.columns]
        columns.append(wide)
    return pd.concat(columns, axis=1, join="outer").loc[runs.index].reset_index()
