"""Reading trial runs back fast, straight from MLflow's sqlite tables. Imports no mlflow.

`import mlflow` alone costs over a second here, and `MlflowClient.search_runs` builds an ORM object per
param, tag and metric (about 1 ms per run), so `archsearch compare` reads the default sqlite store
directly: read-only, a few column queries over MLflow's tables. Those queries were written against one
schema revision of MLflow's store; a store at another revision (a newer or older MLflow), a tracking
server or a PostgreSQL backend is read through `MlflowClient` instead (`search.tracking.client`), with
a logged note for the unknown revision. A test checks that both give the same frame.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing

import pandas as pd

from search.errors import TrackingError
from search.tracking.locations import sqlite_path
from search.tracking.store import check_store, damaged, read_only
from search.tracking.tags import ROLE_TAG, TRIAL_ROLE

# MLflow's alembic revisions whose runs/params/latest_metrics/tags tables these queries were checked on.
KNOWN_SCHEMA_REVISIONS = frozenset({"dc11669786a5"})  # MLflow 3.17
log = logging.getLogger(__name__)


def read_trials(tracking_uri: str, experiments: list[str]) -> pd.DataFrame:
    """Every trial run of the named experiments as one row each (params.*, metrics.*, tags.* columns,
    oldest first), with an `experiment` column."""
    db = sqlite_path(tracking_uri)
    if db is not None:
        revision = check_store(db)
        if revision in KNOWN_SCHEMA_REVISIONS:
            with closing(read_only(db)) as connection:
                try:
                    return _joined(_read_sqlite(connection, tracking_uri, experiments), experiments)
                except sqlite3.DatabaseError as error:
                    raise TrackingError(damaged(db, error)) from None
        log.warning("%s has MLflow schema revision %s, which the fast reader was not checked against; "
                    "reading it through MLflow's client instead (slower)", db, revision)
    from search.tracking.client import experiment_runs  # imports mlflow: only when the fast path cannot serve

    return _joined([experiment_runs(tracking_uri, name, TRIAL_ROLE).assign(experiment=name) for name in experiments], experiments)


def _joined(frames: list[pd.DataFrame], experiments: list[str]) -> pd.DataFrame:
    trials = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if trials.empty:
        raise TrackingError(f"no trial runs in experiment(s) {', '.join(experiments)}")
    return trials


TRIAL_IDS = f"""
    SELECT runs.run_uuid FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid
    WHERE runs.experiment_id = :experiment AND runs.lifecycle_stage = 'active'
      AND tags.key = '{ROLE_TAG}' AND tags.value = '{TRIAL_ROLE}'
"""
TRIAL_QUERIES = {
    "runs": f"SELECT run_uuid, name, status, start_time, end_time FROM runs WHERE run_uuid IN ({TRIAL_IDS}) ORDER BY start_time",
    "params": f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({TRIAL_IDS})",
    "metrics": f"SELECT run_uuid, key, CASE WHEN is_nan THEN NULL ELSE value END FROM latest_metrics WHERE run_uuid IN ({TRIAL_IDS})",
    "tags": f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({TRIAL_IDS})",
}


def _read_sqlite(connection: sqlite3.Connection, tracking_uri: str, experiments: list[str]) -> list[pd.DataFrame]:
    ids = dict(connection.execute("SELECT name, experiment_id FROM experiments WHERE lifecycle_stage = 'active'").fetchall())
    frames = []
    for name in experiments:
        if name not in ids:
            known = ", ".join(sorted(ids)) or "none"
            raise TrackingError(f"no experiment {name!r} in {tracking_uri}; known: {known}")
        frames.append(_experiment_trials(connection, ids[name]).assign(experiment=name))
    return frames


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
