"""Trials in a process of their own: build, fit and test each replicate, report epochs back, take the next trial.

TensorFlow keeps ~18-40 MiB per built-and-fitted model even after `clear_session()`, so a search that
trains hundreds of candidates in one process grows without bound. A trial process therefore trains trials
one after another only until it has grown by `GROWTH_LIMIT_MIB` since its first, or a trial fails; then
it exits and returns all of it to the system, and the next trial gets a new process. Between those, a
trial finds TensorFlow's kernels and caches warm (about a second per trial on a ResNet-20, measured).
Processes are forked from a server that has already imported this module and with it TensorFlow (see
`search.engine.trial_server`), so a new one starts in milliseconds, not seconds.

Results do not depend on which trials a process ran before: each replicate is seeded, and the ops are
deterministic (a test checks a trial alone against the same trial run after another).
"""

from __future__ import annotations

import math
import os
import queue
import resource
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from search.engine.quiet import import_tensorflow_quietly, stderr_silenced

tf = import_tensorflow_quietly()  # here, so that the fork server pays for it once

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402

from search.data import Data  # noqa: E402
from search.engine.hypermodel import SpaceHyperModel  # noqa: E402
from search.engine.prescreen import ProxyScorer  # noqa: E402
from search.models.costs import model_costs  # noqa: E402
from search.models.latency import latency  # noqa: E402
from search.reporting.statistics import convergence  # noqa: E402
from search.spec.metrics import minimised  # noqa: E402
from search.spec.schema import Space  # noqa: E402
from search.tracking.client import preload_model_format, save_keras_model  # noqa: E402

preload_model_format()  # as TensorFlow above: the fork server pays for it once

GROWTH_LIMIT_MIB = 256  # a trial process takes no new trial once it has grown this much since its first


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial process needs; picklable."""

    space: Space
    data_path: Path
    hyperparameters: kt.HyperParameters
    seeds: list[int]  # one replicate per seed
    epochs: int
    initial_epoch: int = 0
    # hyperband: the trial folders whose best epochs' weights are continued from / kept (`best_weights`)
    load_weights_from: Path | None = None
    save_weights_to: Path | None = None
    model_to: Path | None = None  # where the best replicate's model goes (`keep_model`), if models are kept


class TrialFailed(Exception):
    """A trial that cannot succeed (e.g. over the parameter limit); the search goes on."""


def serve_trials(jobs, events, search_pid: int, threads: int | None) -> None:
    """Entry point of a trial process: for each job from `jobs` sends ("built", costs, summary),
    ("epoch", replicate, epoch, logs)... and ("tested", replicate, test metrics) per replicate, ("timed", latency), ("model", replicate)
    when it kept the best replicate's model, ("scored", proxy score) first under a prescreen, then ("done", seconds spent in fit, MiB its peak size grew
    since the first trial) or ("error", reason, traceback). Ends at a None job, after a failed trial,
    or when the search process is gone (`search_pid`: kill -9, crash). `threads` caps TensorFlow's CPU
    threads (workers sharing one machine)."""
    threading.Thread(target=_exit_with, args=(search_pid,), daemon=True).start()
    if threads:  # before the first op, while TensorFlow's thread pools can still be sized
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    with stderr_silenced():  # each process probes for CUDA on its first op
        tf.constant(0)
    tf.config.experimental.enable_op_determinism()
    first_size = None
    while (job := jobs.get()) is not None:
        try:
            fit_seconds = _run(job, events)
        except BaseException as error:  # reported to the search process, which records it and decides
            events.put(("error", f"{type(error).__name__}: {error}", traceback.format_exc()))
            return  # TensorFlow may be left in any state: the next trial gets a new process
        size = _peak_mib()
        first_size = first_size or size
        events.put(("done", fit_seconds, size - first_size))
        keras.backend.clear_session()  # while the search process logs the trial


def _peak_mib() -> float:
    """The process's peak resident size: what it has held, leftovers included."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes there, KiB on Linux


def _exit_with(search_pid: int) -> None:
    """Exit when the search process is gone: nobody would read this trial's results."""
    while True:
        time.sleep(1.0)
        if _gone(search_pid):
            os._exit(1)


def _gone(pid: int) -> bool:
    """Whether `pid` has ended. A killed process that its parent has not reaped yet is a zombie, and
    gone too: a parent that waits for the output this process still holds would never reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:  # Linux; elsewhere only a reaped process counts
            return stat.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        return False


def _run(job: TrialJob, events) -> float:
    """Each replicate: seeded by its own seed, built, fitted, then tested once on its selected epoch's
    weights ("tested", replicate, metrics)."""
    hypermodel = SpaceHyperModel(job.space, Data.load(job.data_path))
    max_params = job.space.search.max_params
    fit_seconds = 0.0
    kept = None  # (score, replicate, weights) of the best replicate by the objective, on its selected epoch
    if job.space.search.prescreen is not None:  # the score the prescreen ranked it by, computed the same way
        events.put(("scored", {"proxy_score": ProxyScorer(job.space, hypermodel.data)(job.hyperparameters)}))
        keras.backend.clear_session()
    for replicate, seed in enumerate(job.seeds):
        if replicate:
            keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        model = hypermodel.build(job.hyperparameters)
        if replicate == 0:
            costs = model_costs(model) | {"replicas": hypermodel.replicas}
            events.put(("built", costs, summary_text(model)))
            if max_params is not None and costs["params"] > max_params:
                raise TrialFailed(f"Oversized model: {costs['params']:,} parameters > max_params {max_params:,}")
        if job.load_weights_from is not None:
            model.load_weights(best_weights(job.load_weights_from, replicate))
        selected = KeepBest(job.space.search.objective)
        callbacks = [EpochReporter(events, replicate), selected]
        if job.save_weights_to is not None:
            callbacks.append(SaveBest(job.space.search.objective, best_weights(job.save_weights_to, replicate)))
        started = time.perf_counter()
        history = hypermodel.fit(job.hyperparameters, model, seed=seed, callbacks=callbacks, epochs=job.epochs, initial_epoch=job.initial_epoch)
        fit_seconds += time.perf_counter() - started
        measured = convergence(history.history.get("loss", []), hypermodel.data.num_classes, job.space.training.convergence)
        if selected.weights is not None:
            model.set_weights(selected.weights)
            measured["selected_epoch"] = float(selected.epoch + 1)
            if kept is None or selected.best > kept[0]:
                kept = (selected.best, replicate, selected.weights)
        events.put(("tested", replicate, measured | hypermodel.test(job.hyperparameters, model)))
    calls = job.space.tracking.latency_calls
    if calls:  # the weights do not change the time: the last replicate's model stands for all
        events.put(("timed", latency(model, hypermodel.data.x_val, job.hyperparameters.values["batch_size"], calls)))
    if job.model_to is not None and kept is not None:
        keep_model(model, kept[2], hypermodel.data.x_val[:2], job.model_to)
        events.put(("model", kept[1]))
    return fit_seconds


def keep_model(model: keras.Model, weights: list, example, folder: Path) -> None:
    """The selected epoch's weights in a model without the training's optimizer state (it belongs to another
    replicate's last epoch, not to these weights), compiled for `evaluate`, saved in MLflow's Keras format."""
    kept = keras.models.clone_model(model)
    kept.set_weights(weights)
    # plain SGD holds no per-weight state, so the file stays the weights' size and loads without warnings
    kept.compile(optimizer=keras.optimizers.SGD(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    save_keras_model(kept, folder, example)


def best_weights(trial_dir: Path, replicate: int) -> Path:
    """A replicate's own best weights in a trial folder: each replicate continues its own training, so
    replicates stay independent across hyperband's rounds."""
    return Path(trial_dir) / f"best.{replicate}.weights.h5"


class TrialProcess:
    """The search's side of a trial process: starts one when a trial needs it, keeps it for the next trial
    while it is healthy and under `GROWTH_LIMIT_MIB`, and stops it mid-trial on any interruption."""

    def __init__(self, context, threads: int | None = None):
        self.context, self.threads = context, threads
        self.process = None

    def run(self, job: TrialJob, relay) -> float:
        """Train `job`, passing its "built" and "epoch" events to `relay(kind, payload)`. Returns the seconds
        spent in fit; raises KerasTuner's FailedTrialError when the trial fails or its process dies."""
        if self.process is not None and not self.process.is_alive():  # gone while idle (e.g. out of memory)
            self.close()
        if self.process is None:
            self._start()
        self.jobs.put(job)
        try:
            while True:
                kind, *payload = self._next_event()
                if kind == "done":
                    fit_seconds, growth_mib = payload
                    if growth_mib > GROWTH_LIMIT_MIB:
                        self.close()
                    return fit_seconds
                if kind == "error":
                    raise kt.errors.FailedTrialError(payload[0])
                relay(kind, payload)
        except BaseException:  # failed, died, interrupted: the next trial gets a new process
            self.close()
            raise

    def close(self) -> None:
        """Stop the process (idle, or mid-trial when the search was interrupted)."""
        if self.process is None:
            return
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        self.jobs.close()
        self.events.close()
        self.process = None

    def _start(self) -> None:
        self.jobs, self.events = self.context.Queue(), self.context.Queue()
        self.process = self.context.Process(
            target=serve_trials, args=(self.jobs, self.events, os.getpid(), self.threads), name="trial-process"
        )
        self.process.start()

    def _next_event(self) -> tuple:
        while True:
            try:
                return self.events.get(timeout=1.0)
            except queue.Empty:
                if self.process.is_alive():
                    continue
                try:  # it may have reported and exited between the wait and the check
                    return self.events.get(timeout=1.0)
                except queue.Empty:
                    raise kt.errors.FailedTrialError(f"trial process died (exit code {self.process.exitcode})") from None


class EpochReporter(keras.callbacks.Callback):
    def __init__(self, events, replicate: int):
        super().__init__()
        self.events, self.replicate = events, replicate

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        self.events.put(("epoch", self.replicate, epoch, logs))


class KeepBest(keras.callbacks.Callback):
    """The weights of the epoch the objective selects (validation, unless the objective is a training
    metric), kept in memory: the test part is evaluated on them, once."""

    def __init__(self, objective: str):
        super().__init__()
        self.objective = objective
        self.sign = -1 if minimised(objective) else 1
        self.best = -math.inf
        self.weights, self.epoch = None, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.objective)
        if value is not None and math.isfinite(value) and self.sign * value > self.best:
            self.best, self.epoch = self.sign * value, epoch
            self.weights = self.model.get_weights()


class SaveBest(keras.callbacks.Callback):
    """Keep the weights of the best epoch by the objective, for hyperband to continue from."""

    def __init__(self, objective: str, path: Path):
        super().__init__()
        self.objective, self.path = objective, path
        self.sign = -1 if minimised(objective) else 1
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
