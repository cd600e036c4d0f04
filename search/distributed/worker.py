"""A distributed worker's side: a tuner that names itself on every call to its chief, sends heartbeats
while it holds a trial, and cleans up after a worker that died with the same trial before it."""

from __future__ import annotations

import collections
import os
import threading

import grpc

from search.distributed.distribution import HEARTBEAT_SECONDS, WORKER_RPC_TIMEOUT
from search.engine import compat
from search.engine.tuner import TrackedTuner
from search.tracking.tags import WORKER_TAG


def set_worker_environment(worker_id: str, chief: str) -> None:
    """KerasTuner's distributed mode is configured by environment variables, read when a tuner is made."""
    compat.set_worker_timeout(WORKER_RPC_TIMEOUT)
    host, _, port = chief.rpartition(":")
    os.environ["KERASTUNER_TUNER_ID"] = worker_id
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = port


def identify_worker(oracle_client, worker_id: str, chief: str) -> None:
    """Route a KerasTuner worker's oracle calls through a channel that names the worker on every call."""
    channel = grpc.intercept_channel(grpc.insecure_channel(chief), _WorkerId(worker_id))
    compat.route_worker_calls(oracle_client, channel)


class WorkerTuner(TrackedTuner):
    """The tracked tuner of a worker: its oracle is a client of the chief's."""

    def run_trial(self, trial, *args, **kwargs):
        with Heartbeat(self.oracle, trial.trial_id):
            return super().run_trial(trial, *args, **kwargs)

    def log_front(self) -> None:
        """Not here: the chief logs the front as trials end. Workers finishing at once would each append
        the hypervolume of the step they saw."""

    def start_trial_run(self, trial_id: str, values: dict, tags: dict | None = None) -> str:
        # a run left RUNNING by a worker that died with this trial (the chief handed it out again)
        self.tracker.end_running_children(self.parent_id, "KILLED", "its worker was lost; the trial ran again", trial_id)
        return super().start_trial_run(trial_id, values, (tags or {}) | {WORKER_TAG: self.tuner_id})


class Heartbeat:
    """While a worker holds a trial (training, logging, waiting on MLflow), a thread tells the chief every
    few seconds that it is alive and on it (a cheap `get_trial`), so the chief can hand out again the trials
    of workers that stop talking."""

    def __init__(self, oracle, trial_id: str):
        self.oracle, self.trial_id = oracle, trial_id
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}")

    def __enter__(self):
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


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _WorkerId(grpc.UnaryUnaryClientInterceptor):
    """Adds the worker's id to every call, so the chief knows who reports (KerasTuner's requests do not say)."""

    def __init__(self, worker_id: str):
        self.metadata = (compat.WORKER_METADATA, worker_id)

    def intercept_unary_unary(self, continuation, details, request):
        metadata = [*(details.metadata or ()), self.metadata]
        return continuation(
            _CallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready, details.compression),
            request,
        )
