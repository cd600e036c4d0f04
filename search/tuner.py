"""A KerasTuner tuner whose every trial is one nested MLflow run, trained in a process of its own.

KerasTuner's oracle (grid, random, bayesian, hyperband) decides what to try and keeps the search's
state; this tuner trains each trial in a trial process of its own (see `search.trial_process`), relays
its epochs to the progress display, and logs params, curves, costs and status. A trial that fails is recorded and
raised as KerasTuner's `FailedTrialError`, so KerasTuner's own failed-trial accounting stays in charge.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from pathlib import Path

import keras_tuner as kt
from keras_tuner.engine import base_tuner
from keras_tuner.src import config as kt_config

from search.distributed import HEARTBEAT_SECONDS, is_worker
from search.hypermodel import declare
from search.space import Space
from search.tracking import Tracker
from search.trial_process import TrialJob, TrialProcess
from search.trial_server import process_context


class TrialObserver:
    """Receives progress events; the CLI's live display implements it. Every method is optional."""

    def search_begin(self, planned_trials: int | None, done: int = 0) -> None:
        """`done`: trials an interrupted search had already finished, when it is continued."""

    def trial_begin(self, trial_id: str, values: dict) -> None: ...

    def epoch_end(self, trial_id: str, execution: int, epoch: int, logs: dict) -> None: ...

    def trial_end(self, trial_id: str, status: str, metrics: dict, reason: str = "") -> None: ...


class TrackedTuner(base_tuner.BaseTuner):
    def __init__(
        self,
        *,
        space: Space,
        data_path: Path,
        tracker: Tracker,
        parent_id: str,
        run_params: dict,
        run_tags: dict,
        observer: TrialObserver | None = None,
        trial_tags=None,
        trial_metrics: dict | None = None,
        threads: int | None = None,
        **kwargs,
    ):
        """`trial_tags(values) -> dict` and `trial_metrics` add to every trial run (a transfer's links to
        the search its cells came from, and that search's cost); `threads` caps each trial's CPU threads
        (workers sharing a machine)."""
        self.space = space
        super().__init__(**kwargs)
        self.data_path = data_path
        self.tracker = tracker
        self.parent_id = parent_id
        self.run_params = run_params
        self.run_tags = run_tags
        self.observer = observer or TrialObserver()
        self.trial_tags = trial_tags or (lambda values: {})
        self.trial_metrics = trial_metrics or {}
        self.trial_process = TrialProcess(process_context(), threads)
        kt_config.DEBUG = False  # KerasTuner prints a traceback per failed trial; the reason is shown and logged instead

    def _populate_initial_space(self):
        """Declare the axes without building a model in this process (KerasTuner would build one)."""
        hp = self.oracle.get_space()
        declare(hp, self.space)
        self.oracle.update_space(hp)

    def search(self, *fit_args, **fit_kwargs):
        """KerasTuner's search loop; the trial process kept between trials ends with it."""
        try:
            super().search(*fit_args, **fit_kwargs)
        finally:
            self.trial_process.close()

    def run_trial(self, trial, *args, **kwargs):
        with Heartbeat(self.oracle, trial.trial_id):
            return self._run_trial(trial)

    def _run_trial(self, trial):
        hp = trial.hyperparameters
        values = declare(hp, self.space)  # the space's names: searched cells as one `genotype`
        recorded = self.tracker.finished_trial(self.parent_id, trial.trial_id)
        if recorded is not None:  # logged before an interruption, not yet saved by KerasTuner
            self.observer.trial_begin(trial.trial_id, values)
            self.observer.trial_end(trial.trial_id, "FINISHED", recorded)
            return {self.oracle.objective.name: recorded[f"best_{self.oracle.objective.name}"]}
        if is_worker():  # a run left RUNNING by a worker that died with this trial (the chief handed it out again)
            self.tracker.end_running_children(self.parent_id, "KILLED", "its worker was lost; the trial ran again", trial.trial_id)
        run_id = self.tracker.start_run(
            f"trial-{trial.trial_id}",
            params=self.run_params | values | {"trial_id": trial.trial_id},
            tags=self.run_tags | self.trial_tags(values) | ({"archsearch.worker": self.tuner_id} if is_worker() else {}),
            parent_id=self.parent_id,
        )
        self.observer.trial_begin(trial.trial_id, values)
        started = time.perf_counter()
        try:
            if "genotype" in values:
                self._log_genotype(run_id, values["genotype"])
            curves, costs, summary, fit_seconds = self._run_in_process(trial, self._job(trial))
            if summary:
                self.tracker.log_text(run_id, summary, "model_summary.txt")
            _refuse_non_finite(curves)
            metrics = self._summarise(curves, costs)
            metrics |= {"train_seconds": fit_seconds, "trial_seconds": time.perf_counter() - started} | self.trial_metrics
            self.tracker.log_curves(run_id, _mean_curve(curves), first_step=hp.values.get("tuner/initial_epoch", 0) + 1)
            self.tracker.log_metrics(run_id, metrics)
            self.tracker.end_run(run_id, "FINISHED")
        except BaseException as error:  # the run must not stay RUNNING, whatever failed
            status, reason = _status_and_reason(error)
            self.tracker.end_run(run_id, status, reason=reason)
            self.observer.trial_end(trial.trial_id, status, {}, reason)
            raise
        self.observer.trial_end(trial.trial_id, "FINISHED", metrics)
        return [_best_epoch(curve, self.oracle.objective) for curve in curves]

    def _log_genotype(self, run_id: str, genotype: str) -> None:
        """The cells as a figure, so two trials' cells can be compared side by side in the MLflow UI."""
        from search.cells import parse_genotype
        from search.figures import genotype_figure

        self.tracker.log_figure(run_id, genotype_figure(parse_genotype(genotype)), "genotype.png")

    def _job(self, trial) -> TrialJob:
        values = trial.hyperparameters.values
        previous = values.get("tuner/trial_id")
        return TrialJob(
            space=self.space,
            data_path=self.data_path,
            hyperparameters=trial.hyperparameters,
            seed=self.space.search.seed,
            executions=self.space.search.executions_per_trial,
            epochs=values.get("tuner/epochs", self.space.training.epochs),
            initial_epoch=values.get("tuner/initial_epoch", 0),
            load_weights_from=self._weights_path(previous) if previous else None,
            save_weights_to=self._weights_path(trial.trial_id) if self.space.search.strategy == "hyperband" else None,
        )

    def _weights_path(self, trial_id: str) -> Path:
        return Path(self.get_trial_dir(trial_id)) / "best.weights.h5"

    def _run_in_process(self, trial, job: TrialJob):
        """Train the trial in the trial process, relaying its epochs to the display as they end."""
        curves: list[list[dict]] = []
        costs: dict = {}
        summary = ""

        def relay(kind: str, payload: list) -> None:
            nonlocal costs, summary
            if kind == "built":
                costs, summary = payload
            elif kind == "epoch":
                execution, epoch, logs = payload
                while len(curves) <= execution:
                    curves.append([])
                curves[execution].append(logs)
                self.observer.epoch_end(trial.trial_id, execution, epoch, logs)
            else:
                raise RuntimeError(f"unexpected event {kind!r} from the trial process")

        fit_seconds = self.trial_process.run(job, relay)
        return curves, costs, summary, fit_seconds

    def _summarise(self, curves: list[list[dict]], costs: dict) -> dict:
        """Costs, the objective's best epoch (mean over executions) and, with several executions, the
        spread of every final value as `<name>_std`."""
        objective = self.oracle.objective
        best_key = f"best_{objective.name}"
        finals = [curve[-1] | {best_key: _best_epoch(curve, objective)[objective.name]} for curve in curves]
        metrics = dict(costs)
        metrics["epochs_run"] = len(curves[0])
        metrics[best_key] = statistics.fmean(final[best_key] for final in finals)
        if len(finals) > 1:
            for key in finals[0]:
                metrics[f"{key}_std"] = statistics.stdev(final[key] for final in finals)
        return metrics


class Heartbeat:
    """While a worker holds a trial (training, logging, waiting on MLflow), a thread tells the chief every
    few seconds that it is alive and on it (a cheap `get_trial`), so the chief can hand out again the trials
    of workers that stop talking. Nothing to do outside distributed mode."""

    def __init__(self, oracle, trial_id: str):
        self.oracle, self.trial_id = oracle, trial_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}") if is_worker() else None

    def __enter__(self):
        if self.thread is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()

    def _beat(self) -> None:
        while not self.stopped.wait(HEARTBEAT_SECONDS):
            try:
                self.oracle.get_trial(self.trial_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the trial's own calls report real errors
                continue


def _status_and_reason(error: BaseException) -> tuple[str, str]:
    if isinstance(error, KeyboardInterrupt):
        return "KILLED", "interrupted (Ctrl-C)"
    if isinstance(error, kt.errors.FailedTrialError):
        return "FAILED", str(error)
    return "FAILED", f"{type(error).__name__}: {error}"


def _best_epoch(curve: list[dict], objective: kt.Objective) -> dict:
    """The epoch's logs with the best objective value (what KerasTuner scores a trial by)."""
    key = (lambda logs: logs[objective.name]) if objective.direction == "max" else (lambda logs: -logs[objective.name])
    return max(curve, key=key)


def _mean_curve(curves: list[list[dict]]) -> list[dict]:
    """Per-epoch means over executions (executions stopped early contribute the epochs they ran)."""
    mean = []
    for epoch in range(max(len(curve) for curve in curves)):
        present = [curve[epoch] for curve in curves if epoch < len(curve)]
        mean.append({k: sum(logs[k] for logs in present) / len(present) for k in present[0]})
    return mean


def _refuse_non_finite(curves: list[list[dict]]) -> None:
    if not curves or not all(curves):
        raise kt.errors.FailedTrialError("the trial process reported no finished epoch")
    for curve in curves:
        for epoch, logs in enumerate(curve, start=1):
            loss = logs.get("loss", 0.0)
            if not math.isfinite(loss):
                raise kt.errors.FailedTrialError(f"training loss became {loss} at epoch {epoch}")
