"""One search from a validated space to a finished parent run: data, tuner, tracking, in that order.

The data is loaded before anything is written, so a space whose data cannot be loaded leaves no
trace in MLflow or the tuner directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from search.data import load_data
from search.provenance import provenance_tags
from search.space import Space
from search.store import ROLE_TAG, resolve_tracking_uri
from search.strategies import make_tuner, planned_trials
from search.tracking import Tracker
from search.tuner import TrialObserver

DEFAULT_TUNER_DIR = Path("mlruns") / "tuner"


@dataclass(frozen=True)
class SearchResult:
    tracking_uri: str
    experiment_id: str
    parent_id: str
    trials: pd.DataFrame  # the nested runs, as read back from MLflow


def resolved_space_yaml(space: Space) -> str:
    """The space with every default filled in: what actually ran."""
    return yaml.safe_dump(space.model_dump(mode="json"), sort_keys=False)


def run_search(
    space: Space,
    space_path: Path,
    *,
    tracking_uri: str | None = None,
    tuner_dir: Path = DEFAULT_TUNER_DIR,
    observer: TrialObserver | None = None,
) -> SearchResult:
    """Run every trial of `space`; each is a nested MLflow run under one parent run for the search."""
    seed = space.search.seed
    data = load_data(space.dataset, seed)
    tracker = Tracker(resolve_tracking_uri(tracking_uri), space.experiment)
    tags = provenance_tags(space_path, seed)
    params = space.settings() | data.describe()
    parent_id = tracker.start_run(space.name, params=params, tags=tags | {ROLE_TAG: "search"})
    tracker.log_text(parent_id, resolved_space_yaml(space), "space.yaml")
    observer = observer or TrialObserver()
    started = time.perf_counter()
    try:
        data_path = Path(tuner_dir) / space.name / "data.npz"
        tuner = make_tuner(
            space,
            data_path=data_path,
            directory=str(tuner_dir),
            project_name=space.name,
            overwrite=True,
            tracker=tracker,
            parent_id=parent_id,
            run_params=params,
            run_tags=tags
            | {
                ROLE_TAG: "trial",
                "archsearch.axes": ",".join(space.axes()),
                "archsearch.varying": ",".join(space.varying_axes()),
            },
            observer=observer,
        )
        data.save(data_path)  # after the tuner has (re)created its folder
        observer.search_begin(planned_trials(space))
        tuner.search(verbose=0)
    except KeyboardInterrupt:
        tracker.end_run(parent_id, "KILLED", reason="interrupted (Ctrl-C)")
        raise
    except BaseException as error:
        tracker.end_run(parent_id, "FAILED", reason=f"{type(error).__name__}: {error}")
        raise
    trials = tracker.runs(parent_id)
    tracker.log_metrics(parent_id, search_summary(trials, space, time.perf_counter() - started))
    tracker.end_run(parent_id, "FINISHED")
    return SearchResult(tracker.tracking_uri, tracker.experiment_id, parent_id, trials)


def search_summary(trials: pd.DataFrame, space: Space, wall_seconds: float) -> dict[str, float]:
    """The search's cost and outcome, logged on the parent run."""
    status = trials["status"] if len(trials) else pd.Series(dtype=str)
    summary = {
        "trials_finished": float((status == "FINISHED").sum()),
        "trials_failed": float((status == "FAILED").sum()),
        "search_seconds": wall_seconds,
    }
    if "metrics.train_seconds" in trials:
        summary["train_seconds_total"] = float(trials["metrics.train_seconds"].sum())
    best_key = f"metrics.best_{space.search.objective}"
    if best_key in trials and trials[best_key].notna().any():
        best = trials[best_key]
        summary[f"best_{space.search.objective}"] = float(best.min() if space.search.objective.endswith("loss") else best.max())
    return summary
