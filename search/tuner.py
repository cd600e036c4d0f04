"""A KerasTuner tuner whose every trial is one nested MLflow run under the search's parent run.

The oracle (grid, random, bayesian, hyperband) decides what to try; this class only wraps each trial:
seed, build, fit through KerasTuner's own loop, then log params, curves, costs and status. Failures
are recorded and re-raised so that KerasTuner's own failed-trial accounting stays in charge.
"""

from __future__ import annotations

import math
import time

import keras
import keras_tuner as kt

from search.costs import model_costs
from search.tracking import Tracker


class TrialObserver:
    """Receives progress events; the CLI's live display implements it. Every method is optional."""

    def search_begin(self, planned_trials: int | None) -> None: ...

    def trial_begin(self, trial_id: str, values: dict) -> None: ...

    def epoch_end(self, trial_id: str, execution: int, epoch: int, logs: dict) -> None: ...

    def trial_end(self, trial_id: str, status: str, metrics: dict) -> None: ...


class TrackedTuner(kt.Tuner):
    def __init__(
        self,
        *,
        tracker: Tracker,
        parent_id: str,
        run_params: dict,
        run_tags: dict,
        observer: TrialObserver | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tracker = tracker
        self.parent_id = parent_id
        self.run_params = run_params
        self.run_tags = run_tags
        self.observer = observer or TrialObserver()
        self._curves: list[list[dict]] = []
        self._first_epoch = 0
        self._costs: dict = {}
        self._run_id = ""

    def run_trial(self, trial, *args, **kwargs):
        values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        self._curves, self._costs = [], {}
        self._first_epoch = trial.hyperparameters.values.get("tuner/initial_epoch", 0)
        run_id = self._run_id = self.tracker.start_run(
            f"trial-{trial.trial_id}",
            params=self.run_params | values | {"trial_id": trial.trial_id},
            tags=self.run_tags,
            parent_id=self.parent_id,
        )
        self.observer.trial_begin(trial.trial_id, values)
        started = time.perf_counter()
        try:
            histories = super().run_trial(trial, *args, **kwargs)
            _refuse_non_finite(self._curves)
        except BaseException as error:
            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            self.tracker.end_run(run_id, status, reason=f"{type(error).__name__}: {error}")
            self.observer.trial_end(trial.trial_id, status, {})
            raise
        metrics = self._summarise(time.perf_counter() - started)
        self.tracker.log_curves(run_id, _mean_curve(self._curves), first_step=self._first_epoch + 1)
        self.tracker.log_metrics(run_id, metrics)
        self.tracker.end_run(run_id, "FINISHED")
        self.observer.trial_end(trial.trial_id, "FINISHED", metrics)
        return histories

    def _build_hypermodel(self, hp):
        """Seed each execution (seed, seed+1, ...) right before its model is built, after KerasTuner
        has cleared the previous session, so a trial's result depends only on its values and the seed."""
        keras.utils.set_random_seed(self.oracle.seed + len(self._curves))
        self._curves.append([])
        model = super()._build_hypermodel(hp)
        if not self._costs:
            self._costs = model_costs(model)
            self.tracker.log_text(self._run_id, _summary_text(model), "model_summary.txt")
        return model

    def on_epoch_end(self, trial, model, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        self._curves[-1].append(logs)
        self.observer.epoch_end(trial.trial_id, len(self._curves) - 1, epoch, logs)
        super().on_epoch_end(trial, model, epoch, logs)

    def _summarise(self, seconds: float) -> dict:
        objective = self.oracle.objective
        last = [curve[-1] for curve in self._curves]
        metrics = dict(self._costs)
        metrics["train_seconds"] = seconds
        metrics["epochs_run"] = len(self._curves[0])
        direction = max if objective.direction == "max" else min
        bests = [direction(logs[objective.name] for logs in curve if objective.name in logs) for curve in self._curves]
        metrics[f"best_{objective.name}"] = sum(bests) / len(bests)
        if len(last) > 1:
            for key in last[0]:
                mean = sum(logs[key] for logs in last) / len(last)
                metrics[f"{key}_std"] = math.sqrt(sum((logs[key] - mean) ** 2 for logs in last) / (len(last) - 1))
        return metrics


def _summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *_, **__: lines.append(line), line_length=110)
    return "\n".join(lines)


def _mean_curve(curves: list[list[dict]]) -> list[dict]:
    """Per-epoch means over executions (executions stopped early contribute the epochs they ran)."""
    length = max(len(curve) for curve in curves)
    mean = []
    for epoch in range(length):
        present = [curve[epoch] for curve in curves if epoch < len(curve)]
        keys = present[0].keys()
        mean.append({k: sum(logs[k] for logs in present) / len(present) for k in keys})
    return mean


def _refuse_non_finite(curves: list[list[dict]]) -> None:
    for curve in curves:
        for epoch, logs in enumerate(curve, start=1):
            loss = logs.get("loss", 0.0)
            if not math.isfinite(loss):
                raise kt.errors.FailedTrialError(f"training loss became {loss} at epoch {epoch}")
