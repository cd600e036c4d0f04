"""One search from a validated space to a finished parent run: data, tuner, tracking, in that order.

The data is loaded before anything is written, so a space whose data cannot be loaded leaves no
trace in MLflow or the tuner directory.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from search.data import Data, load_data
from search.distributed.chief import serve
from search.distributed.distribution import Distribution, search_key
from search.engine.front import log_front
from search.engine.prescreen import ProxyScorer
from search.engine.oracles import planned_trials
from search.engine.state import repair_state
from search.engine.trial_server import start_trial_server
from search.engine.tuner import TrackedTuner, prune_models
from search.errors import SearchChanged, TrackingUnreachable
from search.orchestration.plan import check_memory
from search.orchestration.resume import (
    LOCK_FILE,
    RESUMABLE,
    SearchState,
    differences,
    exclusive,
    exclusive_search,
    with_current_defaults,
)
from search.orchestration.transfer import Origin
from search.reporting.progress import TrialObserver
from search.spec.metrics import best_metric, minimised
from search.spec.schema import Space
from search.tracking.client import Patience, Tracker, abandon_search
from search.tracking.locations import resolve_tracking_uri
from search.tracking.provenance import provenance_tags
from search.tracking.tags import AXES_TAG, BEST_NAME_TAG, BEST_RUN_TAG, NOTE_TAG, ROLE_TAG, SEARCH_ROLE, TRIAL_ROLE, VARYING_TAG

DEFAULT_TUNER_DIR = Path("mlruns") / "tuner"
DEFAULT_TRACKING_TIMEOUT = 300.0  # seconds a search waits for a tracking server that stopped answering


@dataclass(frozen=True)
class SearchResult:
    tracking_uri: str
    experiment_id: str
    parent_id: str
    trials: pd.DataFrame  # the nested runs, as read back from MLflow
    outcome: str = "finished"  # "finished", "resumed" (an interrupted search completed) or "already done"


def resolved_space_yaml(space: Space) -> str:
    """The space with every default filled in: what actually ran."""
    return yaml.safe_dump(space.model_dump(mode="json"), sort_keys=False)


def run_search(space: Space, space_path: Path, *, tuner_dir: Path = DEFAULT_TUNER_DIR, **options) -> SearchResult:
    """Run every trial of `space`; each is a nested MLflow run under one parent run for the search.

    An interrupted search of the same space (same tuner folder) is continued; see `search.orchestration.resume`.
    Options: tracking_uri, fresh, observer, origin (a transfer's source search), distribution (serve the
    trials to workers as a KerasTuner chief instead of running them here), tracking_timeout (seconds to wait
    for a tracking server that does not answer), model_groups (under `save_models: best`, the axes whose
    every combination keeps its best trial's model; a study's groups), threads (CPU threads of each trial
    trained here; default: all cores). One process at a time works on a search, and on a tuner folder (two
    locks).
    """
    if options.get("distribution") is None:  # trials train here: their server's imports overlap what follows
        start_trial_server()
    data = load_data(space.dataset)  # before anything is written: bad data writes nothing
    check_memory(space, data)  # and a search too big for this machine neither
    project = Path(tuner_dir) / space.name
    key = search_key(space.model_dump(mode="json"), data.fingerprint)
    with exclusive_search(key, resolve_tracking_uri(options.get("tracking_uri")), project), exclusive(project):
        return _run_search(space, space_path, data, tuner_dir=tuner_dir, **options)


def _run_search(
    space: Space,
    space_path: Path,
    data: Data,
    *,
    tracking_uri: str | None = None,
    tuner_dir: Path = DEFAULT_TUNER_DIR,
    fresh: bool = False,
    observer: TrialObserver | None = None,
    origin: Origin | None = None,
    distribution: Distribution | None = None,
    tracking_timeout: float = DEFAULT_TRACKING_TIMEOUT,
    model_groups: list[str] = (),
    threads: int | None = None,
) -> SearchResult:
    uri = resolve_tracking_uri(tracking_uri)
    project = Path(tuner_dir) / space.name
    observer = observer or TrialObserver()
    patience = Patience(tracking_timeout, observer.note)
    resolved = space.model_dump(mode="json")
    previous = None if fresh else SearchState.read(project)
    if previous is not None:
        changes = differences(with_current_defaults(previous.space), resolved)
        if previous.tracking_uri != uri:
            changes.append(f"tracking URI: {previous.tracking_uri} -> {uri}")
        if previous.data_hash != data.fingerprint:
            changes.append(f"data (split hash): {previous.data_hash} -> {data.fingerprint}")
        if previous.status in RESUMABLE and changes:
            raise SearchChanged(project, changes)
        if previous.status not in RESUMABLE:
            if not changes:
                tracker = Tracker(uri, space.experiment, patience)
                return SearchResult(uri, tracker.experiment_id, previous.parent_id, tracker.runs(previous.parent_id), "already done")
            previous = None  # a new question: a new search beside the old one
    elif fresh:
        _abandon(SearchState.readable(project))
    tracker = Tracker(uri, space.experiment, patience)
    tracker.show_columns(space.varying_names(), ui_metrics(space, data))
    params, tags = run_context(space, space_path, data, origin)
    if previous is not None:
        parent_id = previous.parent_id
        tracker.reopen(parent_id)
        tracker.end_running_children(parent_id, "KILLED", "interrupted; the trial is run again on resume")
        for line in repair_state(project, space, lambda: finished_records(tracker.runs(parent_id))):
            observer.note(line)
    else:
        _clear(project)  # KerasTuner's state of an earlier search of this name
        parent_tags = tags | {ROLE_TAG: SEARCH_ROLE} | (origin.parent_tags() if origin else {})
        parent_id = tracker.start_run(space.name, params={}, tags=parent_tags | {NOTE_TAG: search_description(space)})
    state = SearchState(resolved, uri, tracker.experiment_id, parent_id, "running", data.fingerprint)
    state.write(project)  # from here on, an interruption can be resumed
    tracker.log_params(parent_id, params)  # again on resume: the same values, in case a kill came first
    tracker.log_text(parent_id, resolved_space_yaml(space), "space.yaml")
    started = time.perf_counter()
    try:
        tuner = TrackedTuner.for_space(
            space,
            scorer=ProxyScorer(space, data) if space.search.prescreen else None,
            data_path=project / "data.npz",
            directory=str(tuner_dir),
            project_name=space.name,
            tracker=tracker,
            parent_id=parent_id,
            run_params=params,
            run_tags=trial_tags(space, tags),
            observer=observer,
            trial_tags=origin.trial_tags if origin else None,
            trial_metrics=origin.trial_metrics() if origin else None,
            threads=distribution.threads_per_worker() if distribution else threads,
            model_groups=model_groups,
        )
        data.save(project / "data.npz")
        best = tuner.oracle.get_best_trials(1)  # when continued: what the trials before the interruption reached
        observer.search_begin(planned_trials(space), done=tuner.oracle.finished_trials(), best=best[0].score if best else None)
        if distribution is None:
            tuner.search(verbose=0)
        else:
            serve(tuner, distribution, tracker, parent_id, search_key(resolved, data.fingerprint), space_path, uri, tuner_dir, observer)
    except KeyboardInterrupt:
        tracker.end_run(parent_id, "KILLED", reason="interrupted (Ctrl-C); run the same command again to continue")
        raise
    except TrackingUnreachable:
        raise  # nothing can be logged; the state stays "running", so the same command continues the search
    except BaseException as error:
        tracker.end_run(parent_id, "FAILED", reason=f"{type(error).__name__}: {error}")
        state.ended("failed").write(project)
        raise
    if space.training.save_models == "best":
        prune_models(tracker, parent_id, space.search.objective)  # workers finishing at once may both have kept one
    log_front(tracker, parent_id, space)  # once more: the chief's last call may have come before the last trial's end
    trials = tracker.runs(parent_id)
    summary = search_summary(trials, space, time.perf_counter() - started)
    best = best_trial(trials, space)
    if best is not None:  # the best trial's values: what the collapsed parent row shows in the MLflow UI
        summary = {k.removeprefix("metrics."): v for k, v in best.items() if k.startswith("metrics.") and "/" not in k} | summary
        tracker.set_tags(parent_id, {BEST_RUN_TAG: best["run_id"], BEST_NAME_TAG: best["run_name"]})
    tracker.log_metrics(parent_id, summary)
    tracker.end_run(parent_id, "FINISHED")
    state.ended("finished").write(project)
    return SearchResult(uri, tracker.experiment_id, parent_id, trials, "resumed" if previous else "finished")


def finished_records(trials: pd.DataFrame) -> dict[str, dict]:
    """trial id -> the params and metrics of its FINISHED run: what a damaged trial file is rebuilt from."""
    records = {}
    for _, row in trials[trials["status"] == "FINISHED"].iterrows() if len(trials) else []:
        params = {k.removeprefix("params."): v for k, v in row.items() if k.startswith("params.") and isinstance(v, str)}
        metrics = {k.removeprefix("metrics."): v for k, v in row.items() if k.startswith("metrics.") and pd.notna(v)}
        records[params.get("trial_id", "")] = {"params": params, "metrics": metrics}
    return records


def run_context(space: Space, space_path: Path, data: Data, origin: Origin | None = None) -> tuple[dict, dict]:
    """The params and provenance tags every run of this search carries (the chief's and each worker's)."""
    params = space.settings() | data.describe()
    if origin is not None:
        params |= origin.trial_params()
    # a tag, not a param: a search resumed on other hardware must be able to say so
    return params, provenance_tags(space_path, space.search.seed) | {"device": compute_device()}


def trial_tags(space: Space, tags: dict) -> dict:
    return tags | {
        ROLE_TAG: TRIAL_ROLE,
        AXES_TAG: ",".join(space.axes()),
        VARYING_TAG: ",".join(space.varying_names()),
    }


def compute_device() -> str:
    """What trains the trials, for reading `search_hours` as CPU- or GPU-hours."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"{len(gpus)} GPU" if gpus else "CPU"


def _clear(project: Path) -> None:
    """Empty the search's folder but for its lock file, which this process holds."""
    for entry in project.iterdir() if project.is_dir() else []:
        if entry.name != LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _abandon(state: SearchState | None) -> None:
    """--fresh over an interrupted search: its runs end KILLED rather than stay RUNNING forever."""
    if state is not None and state.status == "running":
        abandon_search(state.tracking_uri, state.parent_id, "abandoned: the search was started afresh (--fresh)")


def ui_metrics(space: Space, data: Data) -> list[str]:
    """The metrics the UI's runs table shows: what the comparison reports and ranks by, and the costs."""
    objective = space.search.objective
    test = ["test_loss" if minimised(objective) else "test_accuracy"] if data.has_test else []
    proxy = ["proxy_score"] if space.search.prescreen else []
    return [*test, best_metric(objective), "converged", "params", "flops", "train_seconds", *proxy]


def search_description(space: Space) -> str:
    """The parent run's description in the MLflow UI: the question, the grid, and how to read the answer."""
    search, training = space.search, space.training
    question = space.description or f"How do {', '.join(space.varying_names()) or 'the candidates'} change {search.objective}?"
    return (f"{question.strip()}\n\n{space.describe()}; {search.strategy} search, {training.epochs} epochs, "
            f"{search.repeats} replicate(s) per trial, seed {search.seed}.\n\n"
            f"Intervals and paired tests: `archsearch compare {space.experiment}`; "
            f"tables and figures: `archsearch report {space.experiment}`.")


def best_trial(trials: pd.DataFrame, space: Space) -> pd.Series | None:
    """The FINISHED trial with the best mean of the objective's best epochs (what selection reads)."""
    key = f"metrics.{best_metric(space.search.objective)}"
    finished = trials[trials["status"] == "FINISHED"] if len(trials) else trials
    if key not in finished or not finished[key].notna().any():
        return None
    index = finished[key].idxmin() if minimised(space.search.objective) else finished[key].idxmax()
    return finished.loc[index]


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
        summary["search_hours"] = summary["train_seconds_total"] / 3600  # device-hours; the `device` tag says which
    best_key = best_metric(space.search.objective)
    if f"metrics.{best_key}" in trials and trials[f"metrics.{best_key}"].notna().any():
        best = trials[f"metrics.{best_key}"]
        summary[best_key] = float(best.min() if minimised(space.search.objective) else best.max())
    return summary
