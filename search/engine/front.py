"""A multi-objective search's front, kept up to date as its trials finish (`search.objectives`).

Every finished trial carries `on_front`: 1 while no other finished trial is at least as good in every
objective and better in one, else 0 (re-logged when it changes, so the last value is the search's final
answer). With two objectives the parent run logs `hypervolume` after each trial (MLflow step = trials
finished), the area the front dominates, measured from a reference point that stays fixed for the whole
search: the worst value of each objective among the first `population_size` finished trials (the random
start of NSGA-II; random search's first trials), pushed out by a tenth of their range. Until that many have
finished no hypervolume is logged; then every step from the first trial on is, so the curve is complete.
Later trials worse than the reference in an objective add nothing.

Run by the one process that owns the search, after each trial (the searching process, or a distributed chief
as its workers' trials end) and once more at the end: one writer, so the hypervolume curve has each step once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from search.engine.oracles import planned_trials
from search.reporting.pareto import fronts, hypervolume
from search.spec.metrics import best_metric, minimised
from search.spec.schema import Space
from search.tracking.client import Tracker
from search.tracking.tags import REFERENCE_TAG

MARGIN = 0.1  # of the first trials' range, that the reference lies beyond their worst


def objective_keys(space: Space) -> list[str]:
    """The metrics a trial is placed by: its best epoch's objective, then the costs."""
    first, *costs = space.search.objectives
    return [best_metric(first), *costs]


def points(trials: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Each trial as a point to minimise in every coordinate (maximised metrics negated)."""
    columns = [trials[f"metrics.{key}"].to_numpy(dtype=float) for key in keys]
    return np.column_stack([values if minimised(key) else -values for key, values in zip(keys, columns)])


def reference_point(first: np.ndarray) -> np.ndarray:
    """Beyond the first trials' worst in every coordinate, so their own front already has a volume; an
    objective on which they all agree is pushed out by a tenth of its magnitude instead (at least 0.1)."""
    spread = first.max(axis=0) - first.min(axis=0)
    return first.max(axis=0) + MARGIN * np.where(spread > 0, spread, np.maximum(np.abs(first.max(axis=0)), 1.0))


def log_front(tracker: Tracker, parent_id: str, space: Space) -> None:
    """Re-derive the front and the hypervolume curve from the store: what is logged is what MLflow holds."""
    if not space.search.objectives:
        return
    keys = objective_keys(space)
    columns = [f"metrics.{key}" for key in keys]
    runs = tracker.runs(parent_id)
    if runs.empty or not set(columns) <= set(runs.columns):
        return
    finished = runs[runs["status"] == "FINISHED"].dropna(subset=columns).sort_values("end_time", kind="stable")
    if finished.empty:
        return
    placed = points(finished, keys)
    on_front = set(fronts(placed)[0].tolist())
    known = finished["metrics.on_front"] if "metrics.on_front" in finished else pd.Series(np.nan, index=finished.index)
    for position, (run_id, was) in enumerate(zip(finished["run_id"], known)):
        flag = float(position in on_front)
        if was != flag:
            tracker.log_metrics(run_id, {"on_front": flag})
    start = min(space.search.population_size, planned_trials(space) or space.search.population_size)
    if len(keys) != 2 or len(placed) < start:
        return
    reference = reference_point(placed[:start])
    tracker.set_tags(parent_id, {REFERENCE_TAG: ", ".join(f"{key} {value if minimised(key) else -value:.6g}"
                                                          for key, value in zip(keys, reference))})
    logged = len(tracker.client.get_metric_history(parent_id, "hypervolume"))
    for count in range(logged + 1, len(placed) + 1):
        tracker.log_metrics(parent_id, {"hypervolume": hypervolume(placed[:count], reference)}, step=count)
