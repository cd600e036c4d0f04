"""Distributed search on KerasTuner's chief/worker engine: one chief serves the oracle over gRPC, workers
ask it for trials, train them and log them to the same MLflow tracking store under the chief's parent run.

KerasTuner's own chief loop has two gaps this module closes: a worker that dies keeps its trial "ongoing"
forever (so the chief never ends), and the chief only checks for the end every 20 seconds. Here workers send
a heartbeat while they train; a trial whose worker falls silent for `heartbeat_timeout` seconds (or whose
local worker process exits) is handed out again, and the chief stops as soon as the last trial is in.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

from keras_tuner.src.engine.oracle import synchronized

CHIEF_TAG = "archsearch.chief"  # host:port of the chief serving the search, on its parent run
SEARCH_KEY_TAG = "archsearch.search_key"  # what workers match their own space and data against
HEARTBEAT_SECONDS = 5.0
WORKER_RPC_TIMEOUT = 600  # a worker whose chief is gone gives up after 10 minutes (KerasTuner waits an hour)


class WorkerError(RuntimeError):
    """A worker cannot join a search (no chief's search of this space is running); the message says why."""


@dataclass(frozen=True)
class Distribution:
    """How a search is served: where the chief listens, how many workers it starts on this machine."""

    address: str = "127.0.0.1:0"  # host:port; port 0 picks a free one
    local_workers: int = 0
    heartbeat_timeout: float = 120.0

    def threads_per_worker(self) -> int | None:
        """CPU threads for each local worker's trials, so N workers share the cores instead of fighting."""
        return max(1, (os.cpu_count() or 1) // self.local_workers) if self.local_workers else None


def search_key(resolved_space: dict, data) -> str:
    """What a worker must share with the chief: the resolved space (seed included) and the data split."""
    text = json.dumps(resolved_space, sort_keys=True, default=str) + data.fingerprint
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def set_worker_environment(worker_id: str, chief: str) -> None:
    """KerasTuner's distributed mode is configured by environment variables, read when a tuner is made."""
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = WORKER_RPC_TIMEOUT
    host, _, port = chief.rpartition(":")
    os.environ["KERASTUNER_TUNER_ID"] = worker_id
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = port


def is_worker() -> bool:
    """This process is a KerasTuner worker (its oracle is a client of the chief's)."""
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle() and not utils.is_chief_oracle()


class Chief:
    """Serves one oracle until every trial is done; hands out again the trials of lost workers."""

    def __init__(self, oracle, address: str, heartbeat_timeout: float, on_trial_begin=None, on_trial_end=None):
        import grpc
        from keras_tuner.src import protos
        from keras_tuner.src.distribute.oracle_chief import OracleServicer
        from keras_tuner.src.engine.trial import TrialStatus

        chief = self

        class Servicer(OracleServicer):
            """KerasTuner's servicer, noting when each worker and trial was last heard of."""

            def CreateTrial(self, request, context):  # noqa: N802 - gRPC method names
                trial = chief.create_trial(request.tuner_id)
                if trial.status == TrialStatus.STOPPED:
                    self.stop_triggered = True
                elif trial.status == TrialStatus.RUNNING and on_trial_begin is not None:
                    on_trial_begin(trial.trial_id, {"worker": request.tuner_id})
                return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

            def GetTrial(self, request, context):  # noqa: N802 - workers call it as their heartbeat
                chief.heard(None, request.trial_id)
                return super().GetTrial(request, context)

            def UpdateTrial(self, request, context):  # noqa: N802
                response = super().UpdateTrial(request, context)
                chief.heard(None, request.trial_id)
                return response

            def EndTrial(self, request, context):  # noqa: N802
                response = super().EndTrial(request, context)
                trial = oracle.trials[request.trial.trial_id]
                chief.heard(None, trial.trial_id)
                if on_trial_end is not None:
                    on_trial_end(trial.trial_id, trial.status, trial.score)
                return response

        self.oracle = oracle
        self.heartbeat_timeout = heartbeat_timeout
        self.last_heard: dict[str, float] = {}
        self.lock = threading.Lock()
        self.servicer = Servicer(oracle)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        protos.get_service_grpc().add_OracleServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot listen on {address}")
        self.reclaimed: list[str] = []

    def heard(self, tuner_id: str | None, trial_id: str | None) -> None:
        with self.lock:
            for key in (tuner_id, trial_id):
                if key:
                    self.last_heard[key] = time.monotonic()

    def create_trial(self, tuner_id: str):
        """The oracle's next trial for this worker; while other workers still train, "wait" (IDLE) instead
        of "stop": a lost worker's trial may yet come back to be handed out again."""
        from keras_tuner.src.engine.trial import TrialStatus

        self.heard(tuner_id, None)
        trial = self.oracle.create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            self.heard(tuner_id, trial.trial_id)
        elif trial.status == TrialStatus.STOPPED and not _search_done(self.oracle):
            _keep_worker(self.oracle, tuner_id)
            trial.status = TrialStatus.IDLE
            time.sleep(1.0)  # the worker asks again at once: pace it
        return trial

    def start(self) -> None:
        self.server.start()

    def serve(self, poll: float = 0.5, lost_workers=lambda: []) -> None:
        """Block until the search is done: the oracle said stop, nothing runs, nothing waits for a retry.
        `lost_workers()` names tuner ids known to be gone (local worker processes that exited)."""
        try:
            while True:
                time.sleep(poll)
                for tuner_id in lost_workers():
                    self.reclaim(tuner_id, "its worker process exited")
                self.reclaim_silent()
                if self.done():
                    return
        finally:
            self.server.stop(grace=1.0)

    def done(self) -> bool:
        """Every trial is in, and every worker still talking has been told to stop (a worker the server
        left waiting would hang on its next request)."""
        if not (self.servicer.stop_triggered and _search_done(self.oracle)):
            return False
        now = time.monotonic()
        with self.lock:
            waiting = [t for t in self.oracle.tuner_ids if now - self.last_heard.get(t, now) <= self.heartbeat_timeout]
        return not waiting

    def reclaim_silent(self) -> None:
        now = time.monotonic()
        for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
            with self.lock:
                last = self.last_heard.get(trial.trial_id, now)
            if now - last > self.heartbeat_timeout:
                self.reclaim(tuner_id, f"no heartbeat for {self.heartbeat_timeout:.0f} s")

    def reclaim(self, tuner_id: str, why: str) -> str | None:
        trial_id = _hand_out_again(self.oracle, tuner_id)
        if trial_id is not None:
            self.reclaimed.append(f"trial {trial_id} of {tuner_id}: {why}")
        return trial_id


@synchronized
def _hand_out_again(oracle, tuner_id: str) -> str | None:
    """The lost worker's trial goes to the front of the queue the oracle serves first (its retry queue)."""
    oracle.tuner_ids.discard(tuner_id)
    trial = oracle.ongoing_trials.pop(tuner_id, None)
    if trial is None:
        return None
    oracle._retry_queue.append(trial.trial_id)
    oracle.save()
    return trial.trial_id


@synchronized
def _keep_worker(oracle, tuner_id: str) -> None:
    oracle.tuner_ids.add(tuner_id)  # the oracle forgets a worker it told to stop


@synchronized
def _search_done(oracle) -> bool:
    return not oracle.ongoing_trials and not oracle._retry_queue


class LocalWorkers:
    """`archsearch worker` processes on this machine, kept at N while trials remain."""

    def __init__(self, space_path: Path, chief: str, tracking_uri: str, tuner_dir: Path, count: int, threads: int | None, logs: Path):
        self.command = [sys.executable, "-m", "search.cli", "worker", str(space_path), "--chief", chief,
                        "--tracking-uri", tracking_uri, "--tuner-dir", str(tuner_dir)]
        self.logs = logs
        self.count, self.threads = count, threads
        self.processes: dict[str, subprocess.Popen] = {}
        self.started = 0

    def start(self) -> None:
        while sum(p.poll() is None for p in self.processes.values()) < self.count:
            self.started += 1
            worker_id = f"worker-{self.started}"
            log = open(self.logs / f"{worker_id}.log", "w")  # noqa: SIM115 - the child writes it
            threads = ["--threads", str(self.threads)] if self.threads else []
            self.processes[worker_id] = subprocess.Popen([*self.command, "--id", worker_id, *threads], stdout=log, stderr=subprocess.STDOUT)
            log.close()

    def lost(self, search_done: bool) -> list[str]:
        """Workers that exited with an error since the last call; replaced while the search goes on."""
        gone = [worker_id for worker_id, p in self.processes.items() if p.poll() not in (None, 0)]
        for worker_id in gone:
            del self.processes[worker_id]
        if gone and not search_done:
            self.start()
        return gone

    def stop(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait()


def serve(tuner, distribution: Distribution, tracker, parent_id: str, key: str, space_path: Path, tracking_uri: str,
          tuner_dir: Path, observer) -> None:
    """The chief's side of a search: serve the oracle, start local workers, return when all trials are in."""
    tuner.save()
    best_key = f"best_{tuner.oracle.objective.name}"

    def trial_end(trial_id: str, status: str, score) -> None:
        finished = status == "COMPLETED"
        observer.trial_end(trial_id, "FINISHED" if finished else "FAILED", {best_key: score} if finished and score is not None else {})

    chief = Chief(tuner.oracle, distribution.address, distribution.heartbeat_timeout, on_trial_begin=observer.trial_begin,
                  on_trial_end=trial_end)
    host = distribution.address.rpartition(":")[0]
    address = f"{host}:{chief.port}"
    chief.start()
    tracker.set_tags(parent_id, {CHIEF_TAG: address, SEARCH_KEY_TAG: key})
    workers = LocalWorkers(space_path, address, tracking_uri, Path(tuner_dir), distribution.local_workers,
                           distribution.threads_per_worker(), logs=Path(tuner_dir) / tuner.project_name)
    workers.start()
    try:
        chief.serve(lost_workers=lambda: workers.lost(chief.done()))
    finally:
        workers.stop()


def run_worker(space, space_path: Path, chief: str, *, worker_id: str, tracking_uri: str | None = None,
               tuner_dir: Path = Path("mlruns") / "tuner", threads: int | None = None, observer=None, wait_seconds: float = 60.0):
    """A worker's side: find the chief's search in MLflow, then train the trials the chief hands out."""
    from search.data import load_data
    from search.runner import run_context, trial_tags
    from search.store import resolve_tracking_uri
    from search.strategies import make_tuner
    from search.tracking import Tracker

    data = load_data(space.dataset, space.search.seed)
    uri = resolve_tracking_uri(tracking_uri)
    tracker = Tracker(uri, space.experiment)
    parent_id = _find_search(tracker, search_key(space.model_dump(mode="json"), data), wait_seconds)
    if parent_id is None:
        raise WorkerError(
            f"no running search of {space.name!r} in {uri} whose space and data match this worker's; start "
            f"`archsearch chief` with the same space file first (and the same tracking URI)"
        )
    set_worker_environment(worker_id, chief)
    params, tags = run_context(space, space_path, data)
    folder = Path(tuner_dir) / space.name / worker_id
    tuner = make_tuner(space, data_path=folder / "data.npz", directory=str(Path(tuner_dir) / space.name), project_name=worker_id,
                       overwrite=True, tracker=tracker, parent_id=parent_id, run_params=params, run_tags=trial_tags(space, tags),
                       observer=observer, threads=threads)
    data.save(folder / "data.npz")
    tuner.search(verbose=0)
    return parent_id


def _find_search(tracker, key: str, wait_seconds: float) -> str | None:
    """The running parent run served by a chief for this space and data (the chief may still be starting)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        found = tracker.client.search_runs(
            [tracker.experiment_id], f"tags.`{SEARCH_KEY_TAG}` = '{key}' and attributes.status = 'RUNNING'",
            order_by=["attributes.start_time DESC"], max_results=1,
        )
        if found:
            return found[0].info.run_id
        if time.monotonic() > deadline:
            return None
        time.sleep(1.0)
