"""archsearch from Python, for notebooks and scripts: load a space, run its search, read the trials back,
compare them as `archsearch compare` does, and take the trained model home. Small and stable: the CLI is
built on these functions, and `import archsearch` re-exports them.

Nothing here prints. Heavy imports (TensorFlow, MLflow) happen inside the functions that need them, so
`import archsearch` and `load_space` stay fast."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from search.reporting.progress import TrialObserver
from search.spec.schema import Space

DEFAULT_TUNER_DIR = Path("mlruns") / "tuner"
TrialCallback = Callable[[str, str, dict], None]  # (trial_id, status, metrics) once each trial has ended


def load_space(path: str | Path, *, transfer_target: bool = False) -> Space:
    """Read and validate a space file; a bad one raises `SpaceError`, its message one line naming file and key."""
    from search.spec.reader import load_space as read

    return read(Path(path), transfer_target=transfer_target)


def prepare(trains: bool = False) -> None:
    """Import TensorFlow without its start-up chatter, and tune MLflow's client for a search: a tracking
    server that stops answering is waited for by the tracker itself (`tracking_timeout`), saying so, instead
    of by minutes of MLflow's own silent retries. `trains`: first start the server trial processes fork from,
    so its imports run beside this one's."""
    from search.engine.quiet import import_tensorflow_quietly
    from search.engine.trial_server import start_trial_server

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow's table-creation notes
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    if trains:
        start_trial_server()
    import_tensorflow_quietly()


def run(
    space_path: str | Path,
    *,
    tracking_uri: str | None = None,
    tuner_dir: str | Path = DEFAULT_TUNER_DIR,
    fresh: bool = False,
    workers: int = 0,
    on_trial: TrialCallback | None = None,
    observer: TrialObserver | None = None,
    tracking_timeout: float = 300.0,
    heartbeat_timeout: float = 120.0,
    threads: int | None = None,
):
    """Run the search of a space file and return its `SearchResult` (experiment and parent run ids, the trial
    runs as a DataFrame, and whether it finished, resumed or had already run). Quiet unless given
    `on_trial(trial_id, status, metrics)` or a full `observer`; an interrupted search is continued, a
    finished one is not repeated unless `fresh`. `workers`: train in N local worker processes (a trial whose
    worker is silent for `heartbeat_timeout` s goes to another); `tracking_timeout`: seconds to wait for a
    tracking server that stopped answering before `TrackingUnreachable` (the search's state kept); `threads`:
    CPU threads of each trial (default: all cores in process, the cores shared out among workers), the
    setting that makes the same space give the same numbers in process and on workers."""
    from search.distributed.distribution import Distribution
    from search.errors import UserError
    from search.orchestration.run import run_search

    path = Path(space_path)
    space = load_space(path)
    prepare(trains=workers == 0)
    distribution = Distribution(local_workers=workers, heartbeat_timeout=heartbeat_timeout, threads=threads) if workers else None
    try:
        return run_search(space, path, tracking_uri=tracking_uri, tuner_dir=Path(tuner_dir), fresh=fresh,
                          observer=observer or _Callback(on_trial), distribution=distribution, tracking_timeout=tracking_timeout,
                          threads=threads)
    except UserError as error:
        raise error.at(path) from None


class _Callback(TrialObserver):
    def __init__(self, on_trial: TrialCallback | None):
        self.on_trial = on_trial

    def trial_end(self, trial_id: str, status: str, metrics: dict, reason: str = "") -> None:
        if self.on_trial is not None:
            self.on_trial(trial_id, status, dict(metrics))


def trials(experiments: str | list[str], *, tracking_uri: str | None = None, where: str | None = None,
           all_searches: bool = False) -> pd.DataFrame:
    """One row per trial run of the experiments' latest searches (every search with `all_searches`): run id
    and name, status, every axis and setting under its space-file name, every metric (`test_accuracy`,
    `best_val_accuracy`, per replicate `test_accuracy/replicate_0` ...), and `model` where it keeps one."""
    from search.orchestration.report import load_comparison

    _, found = load_comparison(tracking_uri, _listed(experiments), where=where, all_searches=all_searches)
    return found.reset_index(drop=True)


def compare(
    experiments: str | list[str],
    *,
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    metric: str | None = None,
    where: str | None = None,
    top: int | None = None,
    baseline: str | None = None,
    choose: list[str] | None = None,
    pareto: list[str] | None = None,
    all_searches: bool = False,
    tracking_uri: str | None = None,
):
    """The comparison `archsearch compare` prints, with the same options: `.table` is a DataFrame with one row
    per group (n, mean, std, ci_low/ci_high, converged, diff and its interval, test, p, p_holm, verdict,
    needed, costs); `render(comparison, fmt)` turns it into Markdown, LaTeX, CSV, HTML or JSON."""
    from search.orchestration.report import load_comparison

    comparison, _ = load_comparison(tracking_uri, _listed(experiments), rows=rows, cols=cols, metric=metric, where=where,
                                    top=top, all_searches=all_searches, baseline=baseline, choose=choose, pareto=pareto)
    return comparison


def report(experiments: str | list[str], out: str | Path = "report", *, force: bool = False, log_to_mlflow: bool = True,
           tracking_uri: str | None = None, **options) -> list[Path]:
    """Write the report folder `archsearch report` writes (tables in every format, figures, a self-contained
    index.html); `options` are `compare`'s. Returns the files written."""
    from search.orchestration.report import write_report

    return write_report(tracking_uri, _listed(experiments), Path(out), log_to_mlflow=log_to_mlflow, overwrite=force, **options)


def best_model(experiment: str, *, run_id: str | None = None, where: str | None = None, tracking_uri: str | None = None):
    """The trained model of the experiment's best trial by validation (or of trial `run_id`), as a compiled
    Keras model: `model.evaluate(x, y)` gives the logged loss and accuracy back on the same split."""
    from search.orchestration.export import kept_model, load_model

    prepare()
    return load_model(kept_model(tracking_uri, experiment, run_id=run_id, where=where))


def ensemble(experiment: str, *, top: int = 3, where: str | None = None, tracking_uri: str | None = None):
    """Average the `top` best kept models of the experiment (chosen on validation), judge the ensemble and
    each member on the test part, and log the ensemble's run; returns the `Ensemble` (its run id, members
    and accuracies)."""
    from search.orchestration.ensemble import build_ensemble

    prepare()
    return build_ensemble(tracking_uri, experiment, top=top, where=where)


def export_model(experiment: str, out: str | Path, *, run_id: str | None = None, where: str | None = None,
                 register: str | None = None, force: bool = False, tracking_uri: str | None = None):
    """Write the model `best_model` loads to a `.keras` file (and, given `register`, add it to MLflow's model
    registry under that name); returns the `KeptModel` (run id and name, its metrics) and the registered version."""
    from search.orchestration.export import check_export_file, export_model as write, kept_model
    from search.orchestration.export import register as add_version

    out = Path(out)
    check_export_file(out, force=force)  # before the store is read: a refused file costs nothing
    kept = kept_model(tracking_uri, experiment, run_id=run_id, where=where)
    write(kept, out, force=force)
    return kept, (add_version(kept, register) if register else None)


def _listed(experiments: str | list[str]) -> list[str]:
    return [experiments] if isinstance(experiments, str) else list(experiments)
