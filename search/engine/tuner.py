"""A KerasTuner tuner whose every trial is one nested MLflow run, trained in a process of its own.

KerasTuner's oracle (grid, random, bayesian, hyperband) decides what to try and keeps the search's
state; this tuner trains each trial in a trial process of its own (see `search.engine.trial_process`), relays
its epochs to the progress display, and logs params, curves, costs and status. A trial that fails is recorded and
raised as KerasTuner's `FailedTrialError`, so KerasTuner's own failed-trial accounting stays in charge.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import statistics
import time
from pathlib import Path

import keras_tuner as kt

from search.engine import compat
from search.engine.front import log_front
from search.engine.hypermodel import declare
from search.engine.oracles import STRATEGIES, make_oracle
from search.engine.prescreen import Scorer
from search.engine.trial_process import TrialJob, TrialProcess
from search.engine.trial_server import process_context
from search.errors import TrackingUnreachable
from search.reporting.progress import TrialObserver
from search.spec.metrics import best_metric, minimised
from search.spec.schema import Space
from search.tracking.client import Tracker
from search.tracking.tags import MODEL_GROUP_TAG


class TrackedTuner(compat.DeclaringTuner):
    """Drives one search: the oracle proposes, the trial process trains, MLflow records."""

    @classmethod
    def for_space(cls, space: Space, scorer: Scorer | None = None, **kwargs) -> TrackedTuner:
        """The tuner of `space` with its strategy's oracle (ranking its samples with `scorer` under a
        prescreen); `kwargs`: this class's arguments and KerasTuner's (directory, project_name, overwrite)."""
        return cls(oracle=make_oracle(space, scorer), space=space, **kwargs)

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
        model_groups: list[str] = (),
        **kwargs,
    ):
        """`trial_tags(values) -> dict` and `trial_metrics` add to every trial run (a transfer's links to
        the search its cells came from, and that search's cost); `threads` caps each trial's CPU threads
        (workers sharing a machine); under `save_models: best` the best trial of each group of
        `model_groups`' values keeps its model (a study's groups; one group by default)."""
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
        self.model_groups = list(model_groups)
        self.trial_process = TrialProcess(process_context(), threads)
        compat.quiet_failed_trials()

    def declare(self, hp: kt.HyperParameters) -> None:
        declare(hp, self.space)

    def search(self, *fit_args, **fit_kwargs):
        """KerasTuner's search loop; the trial process kept between trials ends with it."""
        try:
            super().search(*fit_args, **fit_kwargs)
        finally:
            self.trial_process.close()

    def run_trial(self, trial, *args, **kwargs):
        try:
            return self._tracked_trial(trial)
        except TrackingUnreachable as error:  # nothing can be logged: the search stops, its state kept for a resume
            raise compat.StopSearch(error) from None

    def _tracked_trial(self, trial):
        hp = trial.hyperparameters
        values = declare(hp, self.space)  # the space's names: searched cells as one `genotype`
        recorded = self.tracker.finished_trial(self.parent_id, trial.trial_id)
        if recorded is not None:  # logged before an interruption, not yet saved by KerasTuner
            self.observer.trial_begin(trial.trial_id, values)
            self.observer.trial_end(trial.trial_id, "FINISHED", recorded)
            return {self.oracle.objective.name: recorded[best_metric(self.oracle.objective.name)]} | self._costs(recorded)
        run_id = self.start_trial_run(trial.trial_id, values)
        self.observer.trial_begin(trial.trial_id, values)
        started = time.perf_counter()
        try:
            if "genotype" in values:
                self._log_genotype(run_id, values["genotype"])
            curves, tested, costs, summary, fit_seconds, kept = self._run_in_process(trial, self._job(trial))
            if summary:
                self.tracker.log_text(run_id, summary, "model_summary.txt")
            _refuse_non_finite(curves)
            metrics = self._summarise(curves, tested, costs)
            metrics |= {"train_seconds": fit_seconds, "trial_seconds": time.perf_counter() - started} | self.trial_metrics
            self.tracker.log_curves(run_id, _mean_curve(curves), first_step=hp.values.get("tuner/initial_epoch", 0) + 1)
            self.tracker.log_metrics(run_id, metrics)
            self.tracker.end_run(run_id, "FINISHED")
        except TrackingUnreachable:
            raise  # ending the run would wait for the server again
        except BaseException as error:  # the run must not stay RUNNING, whatever failed
            status, reason = _status_and_reason(error)
            self.tracker.end_run(run_id, status, reason=reason)
            self.observer.trial_end(trial.trial_id, status, {}, reason)
            shutil.rmtree(self._model_folder(trial.trial_id), ignore_errors=True)
            raise
        if kept is not None:
            self._keep_model(run_id, values, metrics, kept, self._model_folder(trial.trial_id))
        self.log_front()
        self.observer.trial_end(trial.trial_id, "FINISHED", metrics)
        return [_best_epoch(curve, self.oracle.objective) | self._costs(metrics) for curve in curves]

    def log_front(self) -> None:
        log_front(self.tracker, self.parent_id, self.space)

    def _costs(self, metrics: dict) -> dict:
        """The costs among the search's objectives (`search.objectives`), for a multi-objective oracle."""
        return {name: metrics[name] for name in (self.space.search.objectives or [])[1:] if name in metrics}

    def start_trial_run(self, trial_id: str, values: dict, tags: dict | None = None) -> str:
        """The trial's nested MLflow run, with every setting and axis value as params."""
        return self.tracker.start_run(
            run_name(values, self.space.varying_names(), trial_id),
            params=self.run_params | values | {"trial_id": trial_id},
            tags=self.run_tags | self.trial_tags(values) | (tags or {}),
            parent_id=self.parent_id,
        )

    def _log_genotype(self, run_id: str, genotype: str) -> None:
        """The cells as a figure, so two trials' cells can be compared side by side in the MLflow UI."""
        from search.reporting.figures import genotype_figure  # matplotlib: only for cell searches
        from search.spec.genotypes import parse_genotype

        self.tracker.log_figure(run_id, genotype_figure(parse_genotype(genotype)), "genotype.png")

    def _job(self, trial) -> TrialJob:
        values = trial.hyperparameters.values
        previous = values.get("tuner/trial_id")
        return TrialJob(
            space=self.space,
            data_path=self.data_path,
            hyperparameters=trial.hyperparameters,
            seeds=self.space.search.replicate_seeds(),
            epochs=values.get("tuner/epochs", self.space.training.epochs),
            initial_epoch=values.get("tuner/initial_epoch", 0),
            load_weights_from=Path(self.get_trial_dir(previous)) if previous else None,
            save_weights_to=Path(self.get_trial_dir(trial.trial_id)) if STRATEGIES[self.space.search.strategy].continues_trials else None,
            model_to=self._model_folder(trial.trial_id) if self.space.training.save_models != "none" else None,
        )

    def _model_folder(self, trial_id: str) -> Path:
        return Path(self.get_trial_dir(trial_id)) / "model"

    def _keep_model(self, run_id: str, values: dict, metrics: dict, replicate: int, folder: Path) -> None:
        """Upload the trial's model when every trial keeps one, or when it beats its group's best so far
        (whose model is then dropped: one model per group on disk); the local copy goes either way."""
        try:
            group = ",".join(f"{key}={values[key]}" for key in self.model_groups if key in values)
            if self.space.training.save_models == "best":
                key = best_metric(self.oracle.objective.name)
                sign = -1 if minimised(self.oracle.objective.name) else 1
                held = [run for run in self.tracker.model_holders(self.parent_id) if run.data.tags.get(MODEL_GROUP_TAG) == group]
                if any(sign * run.data.metrics.get(key, -sign * math.inf) >= sign * metrics[key] for run in held):
                    return
            self.tracker.log_model(run_id, folder, group, replicate)
            if self.space.training.save_models == "best":
                prune_models(self.tracker, self.parent_id, self.oracle.objective.name)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _run_in_process(self, trial, job: TrialJob):
        """Train the trial in the trial process, relaying its epochs to the display as they end."""
        curves: list[list[dict]] = []
        tested: list[dict] = []
        costs: dict = {}
        summary = ""
        kept = None  # the replicate whose model the trial process saved

        def relay(kind: str, payload: list) -> None:
            nonlocal costs, summary, kept
            if kind == "model":
                kept = payload[0]
            elif kind == "built":
                costs, summary = costs | payload[0], payload[1]
            elif kind in ("timed", "scored"):
                costs = costs | payload[0]
            elif kind == "epoch":
                replicate, epoch, logs = payload
                while len(curves) <= replicate:
                    curves.append([])
                curves[replicate].append(logs)
                self.observer.epoch_end(trial.trial_id, replicate, epoch, logs)
            elif kind == "tested":
                tested.append(payload[1])
            else:
                raise RuntimeError(f"unexpected event {kind!r} from the trial process")

        fit_seconds = self.trial_process.run(job, relay)
        return curves, tested, costs, summary, fit_seconds, kept

    def _summarise(self, curves: list[list[dict]], tested: list[dict], costs: dict) -> dict:
        """Costs; per replicate, the objective's best epoch, what the trial process measured on its weights
        (test metrics, the selected epoch) and the convergence check, each logged as `<name>/replicate_<i>`; their mean under the plain name (all
        replicates for `converged`), and with several replicates the spread of every value as `<name>_std`."""
        objective = self.oracle.objective
        best_key = best_metric(objective.name)
        replicates = [{best_key: _best_epoch(curve, objective)[objective.name]} | test for curve, test in zip(curves, tested, strict=True)]
        metrics = dict(costs)
        metrics["epochs_run"] = len(curves[0])
        for key in replicates[0]:
            values = [replicate[key] for replicate in replicates]
            metrics[key] = min(values) if key == "converged" else statistics.fmean(values)
            metrics |= {f"{key}/replicate_{i}": value for i, value in enumerate(values)}
        for key in FINAL_TRAINING:  # the plain name is the last point of the logged curve
            metrics |= {f"{key}/replicate_{i}": curve[-1][key] for i, curve in enumerate(curves) if key in curve[-1]}
        if len(curves) > 1:
            finals = [curve[-1] | replicate for curve, replicate in zip(curves, replicates)]
            for key in finals[0]:
                known = [final[key] for final in finals if math.isfinite(final[key])]  # a one-epoch slope is unknown
                if len(known) > 1:
                    metrics[f"{key}_std"] = statistics.stdev(known)
        return metrics


MAX_RUN_NAME = 120
FINAL_TRAINING = ("loss", "accuracy")  # each replicate's training loss and accuracy at its last epoch


def run_name(values: dict, varying: list[str], trial_id: str) -> str:
    """A trial's name in the MLflow UI and its charts' legends: what varies, then the trial's number
    (`config=D bn=post #3`); a searched cell by a short hash of its genotype."""
    parts = [f"{key}={_short(values[key])}" for key in varying if key in values]
    name = " ".join([*parts, f"#{int(trial_id) if trial_id.isdigit() else trial_id}"])
    return name if len(name) <= MAX_RUN_NAME else name[: MAX_RUN_NAME - 3] + "..."


def _short(value) -> str:
    text = str(value)
    if len(text) <= 24:
        return text
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def prune_models(tracker: Tracker, parent_id: str, objective: str) -> int:
    """Under `save_models: best`, keep the model of each group's best trial only (the earliest on a tie) and
    drop the others; returns how many were dropped. Run after each kept model, and at the end of a search,
    where workers that finished at once may both have kept one."""
    key, sign = best_metric(objective), (-1 if minimised(objective) else 1)
    groups: dict[str, list] = {}
    for run in tracker.model_holders(parent_id):
        groups.setdefault(run.data.tags.get(MODEL_GROUP_TAG, ""), []).append(run)
    dropped = 0
    for runs in groups.values():
        runs.sort(key=lambda run: (-sign * run.data.metrics.get(key, -sign * math.inf), run.info.start_time))
        for run in runs[1:]:
            tracker.drop_model(run.info.run_id)
            dropped += 1
    return dropped


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
    """Per-epoch means over replicates (replicates stopped early contribute the epochs they ran)."""
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
