"""Every use of KerasTuner's private API, in one module.

KerasTuner leaves gaps archsearch has to close: its state files are written by truncating and then writing
(a kill or a full disk in between destroys the search), a grid search cannot continue after a reload, "too many
failed trials" is a bare RuntimeError raised while the oracle's lock is held, a distributed chief never
hands out again the trial of a worker that died, and a worker cannot say who it is on its calls. Closing
them means reaching into KerasTuner's internals. They are all here, `keras-tuner` is pinned exactly in
`pyproject.toml`, and `tests/test_compat.py` checks that each name and signature used here exists, so an
upgrade fails in one named place. Everything else uses KerasTuner's public API (`keras_tuner.*`).
"""

from __future__ import annotations

import functools
import json
import os

import keras_tuner as kt
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.engine.trial import TrialStatus
from keras_tuner.src import config as _config
from keras_tuner.src import protos as _protos
from keras_tuner.src.distribute import oracle_client as _oracle_client
from keras_tuner.src.distribute.oracle_chief import OracleServicer as _OracleServicer
from keras_tuner.src.tuners.gridsearch import LinkedList as _LinkedList

from search.errors import SearchStopped, StateError, reported_as
from search.files import write_atomic

ORACLE_FILE, TRIAL_FILE = "oracle.json", "trial.json"  # the state files of a search folder


class StopSearch(kt.errors.FatalError):
    """Carries an error that must end the whole search out of a trial: KerasTuner marks a trial that raises
    anything but a FatalError INVALID and goes on, never to run it again (`DeclaringTuner.search` raises
    the carried error itself)."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


def quiet_failed_trials() -> None:
    """KerasTuner prints a traceback per failed trial; archsearch shows and logs the reason instead."""
    _config.DEBUG = False


def write_state(path: str, state: dict, keep_previous: bool = True) -> None:
    """KerasTuner's JSON state, written atomically, keeping the replaced file as the last good copy
    (not when a damaged file is replaced: it is no copy worth keeping)."""
    with reported_as(StateError, f"write the search's state {path}"):
        write_atomic(path, json.dumps(state), keep_previous=keep_previous)


def rebuilt_oracle_state(oracle, trials: dict[str, dict]) -> dict:
    """An oracle's saved state made again from its trial files (`trials`: id -> saved trial), for an
    `oracle.json` that is lost: a fresh `oracle`'s state, with every trial started and the ended ones ended.
    Trials that were running go to the retry queue, as KerasTuner does on a reload."""
    state = oracle.get_state()
    order = sorted(trials, key=lambda trial_id: (len(trial_id), trial_id))
    ended = [t for t in order if trials[t]["status"] not in (TrialStatus.RUNNING, TrialStatus.IDLE)]
    hashes = {t: oracle._compute_values_hash(trials[t]["hyperparameters"]["values"]) for t in order}
    return state | {
        "ongoing_trials": {},
        "start_order": order,
        "end_order": ended,
        "run_times": {t: 1 for t in order},
        "retry_queue": [t for t in order if t not in ended],
        "tried_so_far": sorted(set(hashes.values())),
        "id_to_hash": hashes,
    }


class DeclaringTuner(BaseTuner):
    """A tuner that declares its hyperparameters itself: KerasTuner would build a whole model in the search
    process only to learn them. It saves its state atomically, as its oracle does (`Oracle`)."""

    def declare(self, hp: kt.HyperParameters) -> None:
        raise NotImplementedError

    def search(self, *fit_args, **fit_kwargs):
        try:
            super().search(*fit_args, **fit_kwargs)
        except StopSearch as stop:
            raise stop.error from None

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        write_state(self._get_tuner_fname(), self.get_state())

    def _populate_initial_space(self):
        hp = self.oracle.get_space()
        self.declare(hp)
        self.oracle.update_space(hp)


class Oracle:
    """What archsearch adds to each KerasTuner oracle it makes (a mixin, first in the bases).

    Too many failed trials in a row become `SearchStopped`; on a chief (`served`), the reason is kept in
    `stopped` instead, because KerasTuner raises it inside `end_trial` holding a lock it never releases.
    State files are written atomically (`write_state`); on a chief, a write that fails (a full disk) is kept
    in `broken` for the same reason, and the chief stops the search with it. The other methods are the
    chief's bookkeeping over the oracle's private state."""

    served = False
    stopped: str | None = None
    broken: StateError | None = None

    def save(self):
        self._write(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        self._write(os.path.join(self._get_trial_dir(trial.trial_id), TRIAL_FILE), trial.get_state())

    def _write(self, path: str, state: dict) -> None:
        try:
            write_state(path, state)
        except StateError as error:
            if not self.served:
                raise
            self.broken = self.broken or error

    def _check_consecutive_failures(self):
        try:
            super()._check_consecutive_failures()
        except RuntimeError as error:
            if not self.served:
                raise SearchStopped(str(error)) from None
            self.stopped = str(error)

    def finished_trials(self) -> int:
        """Trials that ended (an interrupted search that is continued has some)."""
        return len(set(self.end_order))

    def random_values(self) -> dict | None:
        """Random values for every hyperparameter, avoiding tried ones (None when the space is used up)."""
        return self._random_values()

    def is_duplicate(self, values: dict) -> bool:
        return self._duplicate(values)

    def ongoing(self) -> dict:
        """tuner id -> the trial it holds."""
        return dict(self.ongoing_trials)

    def workers(self) -> set[str]:
        """The tuner ids the oracle still serves."""
        return set(self.tuner_ids)

    @kt.synchronized
    def hand_out_again(self, tuner_id: str, trial_id: str | None = None) -> str | None:
        """A lost worker's trial (if it is still `trial_id`) goes to the retry queue, which the oracle serves
        first; returns its id (None when the worker held no trial, or another one)."""
        self.tuner_ids.discard(tuner_id)
        trial = self.ongoing_trials.get(tuner_id)
        if trial is None or (trial_id is not None and trial.trial_id != trial_id):
            return None
        del self.ongoing_trials[tuner_id]
        self._retry_queue.append(trial.trial_id)
        self.save()
        return trial.trial_id

    @kt.synchronized
    def counts_report(self, trial_id: str, worker: str | None, take_late: bool = False) -> bool:
        """Whether a worker's report on a trial counts: it holds the trial, or (`take_late`) the trial was taken
        from it and still waits to be handed out again, in which case the late result is taken and the retry
        dropped. Reports without a worker id (plain KerasTuner workers) count, as in KerasTuner."""
        if trial_id in self._retry_queue:
            if take_late:
                self._retry_queue.remove(trial_id)
            return True
        holders = [tuner_id for tuner_id, trial in self.ongoing_trials.items() if trial.trial_id == trial_id]
        return worker is None or worker in holders

    @kt.synchronized
    def keep_worker(self, tuner_id: str) -> None:
        self.tuner_ids.add(tuner_id)  # the oracle forgets a worker it told to stop

    @kt.synchronized
    def all_trials_in(self) -> bool:
        """Nothing runs and nothing waits for a retry."""
        return not self.ongoing_trials and not self._retry_queue


class GridSearchOracle(Oracle, kt.oracles.GridSearchOracle):
    """KerasTuner's grid oracle, able to continue after a reload, and handing out a new candidate to every
    worker that asks.

    KerasTuner does not save two parts of its state: the trials in grid order and the trials whose next
    combination may not be made yet. A reloaded grid search therefore failed on its next new trial
    (KeyError). Both follow from the saved trials, so they are rebuilt from them.

    KerasTuner makes a trial's successor in the grid only once the trial has ended, though the successor
    depends on its values alone (archsearch declares every axis before the search): with N workers, one
    trained while the others waited. Here a trial's successor may be made as soon as it starts."""

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        if response["status"] == TrialStatus.RUNNING and trial_id not in self._populate_next:
            self._populate_next.append(trial_id)  # in `trials` once create_trial returns, as KerasTuner's first trial is
        return response

    def set_state(self, state):
        super().set_state(state)
        in_grid_order = sorted(
            self.start_order, key=functools.cmp_to_key(lambda a, b: self._compare(self.trials[a].hyperparameters.values,
                                                                                  self.trials[b].hyperparameters.values))
        )
        self._ordered_ids = _LinkedList()
        for trial_id in in_grid_order:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(self.start_order)  # each one's successor is made unless it already exists


class RandomSearchOracle(Oracle, kt.oracles.RandomSearchOracle):
    pass


class BayesianOptimizationOracle(Oracle, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(Oracle, kt.oracles.HyperbandOracle):
    pass


class BaseOracle(Oracle, kt.Oracle):
    """The base of oracles archsearch writes itself (regularized evolution)."""


class Servicer(_OracleServicer):
    """KerasTuner's gRPC servicer of a chief, reporting to `chief` who asked for what and when.

    `chief` answers `create_trial(tuner_id)`, `heard_trial(trial_id)`, `trial_begun(trial_id, worker)` and
    `trial_ended(trial_id)`; its `oracle` is an `Oracle` above."""

    def __init__(self, chief):
        super().__init__(chief.oracle)
        self.chief = chief

    @property
    def stopped(self) -> bool:
        """A worker was told the search is over."""
        return self.stop_triggered

    def CreateTrial(self, request, context):  # noqa: N802 - gRPC method names
        trial = self.chief.create_trial(request.tuner_id)
        if trial.status == TrialStatus.STOPPED:
            self.stop_triggered = True
        elif trial.status == TrialStatus.RUNNING:
            self.chief.trial_begun(trial.trial_id, request.tuner_id)
        return _protos.get_service().CreateTrialResponse(trial=trial.to_proto())

    def GetTrial(self, request, context):  # noqa: N802 - workers call it as their heartbeat
        self.chief.heard_trial(request.trial_id)
        return super().GetTrial(request, context)

    def UpdateTrial(self, request, context):  # noqa: N802
        self.chief.heard_trial(request.trial_id)
        if not self.oracle.counts_report(request.trial_id, sender(context)):  # a lost worker, back too late
            return _protos.get_service().UpdateTrialResponse(trial=self.oracle.trials[request.trial_id].to_proto())
        return super().UpdateTrial(request, context)

    def EndTrial(self, request, context):  # noqa: N802
        trial_id = request.trial.trial_id
        self.chief.heard_trial(trial_id)
        if not self.oracle.counts_report(trial_id, sender(context), take_late=True):
            return _protos.get_service().EndTrialResponse()  # a lost worker, back too late: its trial went to another
        response = super().EndTrial(request, context)
        self.chief.trial_ended(trial_id)
        return response

    def add_to(self, server) -> None:
        _protos.get_service_grpc().add_OracleServicer_to_server(self, server)


WORKER_METADATA = "archsearch-worker"  # the gRPC metadata key a worker names itself under


def sender(context) -> str | None:
    """The worker that made a call (None for plain KerasTuner workers, which do not say)."""
    return dict(context.invocation_metadata()).get(WORKER_METADATA)


def set_worker_timeout(seconds: float) -> None:
    """How long a worker waits on its chief before giving up (KerasTuner waits an hour)."""
    _oracle_client.TIMEOUT = seconds


def route_worker_calls(oracle_client, channel) -> None:
    """Send a worker's oracle calls through `channel` (one that names the worker on every call)."""
    oracle_client.stub = _protos.get_service_grpc().OracleStub(channel)
