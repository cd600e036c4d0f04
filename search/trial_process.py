"""One trial in a process of its own: build, fit each execution, report epochs back, exit.

TensorFlow keeps ~18 MiB per built-and-fitted model even after `clear_session()`, so a search that
trains hundreds of candidates in one process grows without bound. A trial process returns all of it to
the system when it exits. Processes are forked from a server that has already imported this module and
with it TensorFlow (see `search.trial_server`), so a trial starts in milliseconds, not seconds.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from search.quiet import import_tensorflow_quietly, stderr_silenced

tf = import_tensorflow_quietly()  # here, so that the fork server pays for it once

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402

from search.costs import model_costs  # noqa: E402
from search.data import Data  # noqa: E402
from search.hypermodel import SpaceHyperModel  # noqa: E402
from search.space import Space  # noqa: E402


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial process needs; picklable."""

    space: Space
    data_path: Path
    hyperparameters: kt.HyperParameters
    seed: int
    search_pid: int  # the trial stops when the search process is gone (kill -9, crash)
    executions: int
    epochs: int
    initial_epoch: int = 0
    load_weights_from: Path | None = None  # hyperband: continue a shorter trial's best epoch
    save_weights_to: Path | None = None
    threads: int | None = None  # CPU threads for TensorFlow's ops (workers sharing one machine)


class TrialFailed(Exception):
    """A trial that cannot succeed (e.g. over the parameter limit); the search goes on."""


def run_trial_process(job: TrialJob, events) -> None:
    """Entry point of the trial process: sends ("built", costs, summary), ("epoch", execution, epoch,
    logs)..., then ("done", seconds spent in fit) or ("error", reason, traceback)."""
    threading.Thread(target=_exit_with, args=(job.search_pid,), daemon=True).start()
    try:
        events.put(("done", _run(job, events)))
    except BaseException as error:  # reported to the parent, which records it and decides
        events.put(("error", f"{type(error).__name__}: {error}", traceback.format_exc()))


def _exit_with(search_pid: int) -> None:
    """Exit when the search process is gone: nobody would read this trial's results."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(search_pid, 0)
        except ProcessLookupError:
            os._exit(1)


def _run(job: TrialJob, events) -> float:
    if job.threads:  # before the first op, while TensorFlow's thread pools can still be sized
        tf.config.threading.set_intra_op_parallelism_threads(job.threads)
        tf.config.threading.set_inter_op_parallelism_threads(job.threads)
    with stderr_silenced():  # each process probes for CUDA on its first op
        tf.constant(0)
    tf.config.experimental.enable_op_determinism()
    hypermodel = SpaceHyperModel(job.space, Data.load(job.data_path))
    max_params = job.space.search.max_params
    fit_seconds = 0.0
    for execution in range(job.executions):
        keras.utils.set_random_seed(job.seed + execution)
        model = hypermodel.build(job.hyperparameters)
        if execution == 0:
            costs = model_costs(model) | {"replicas": hypermodel.replicas}
            events.put(("built", costs, summary_text(model)))
            if max_params is not None and costs["params"] > max_params:
                raise TrialFailed(f"Oversized model: {costs['params']:,} parameters > max_params {max_params:,}")
        if job.load_weights_from is not None:
            model.load_weights(job.load_weights_from)
        callbacks = [EpochReporter(events, execution)]
        if job.save_weights_to is not None:
            callbacks.append(SaveBest(job.space.search.objective, job.save_weights_to))
        started = time.perf_counter()
        hypermodel.fit(job.hyperparameters, model, callbacks=callbacks, epochs=job.epochs, initial_epoch=job.initial_epoch)
        fit_seconds += time.perf_counter() - started
        if execution + 1 < job.executions:  # the process's exit frees the last one
            keras.backend.clear_session()
    return fit_seconds


class EpochReporter(keras.callbacks.Callback):
    def __init__(self, events, execution: int):
        super().__init__()
        self.events, self.execution = events, execution

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        self.events.put(("epoch", self.execution, epoch, logs))


class SaveBest(keras.callbacks.Callback):
    """Keep the weights of the best epoch by the objective, for hyperband to continue from."""

    def __init__(self, objective: str, path: Path):
        super().__init__()
        self.objective, self.path = objective, path
        self.sign = -1 if objective.endswith("loss") else 1
        self.best = -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is not None and self.sign * value > self.best:
            self.best = self.sign * value
            self.model.save_weights(self.path)


def summary_text(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *_, **__: lines.append(line), line_length=110)
    return "\n".join(lines)
