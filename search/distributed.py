"""Distributed search on KerasTuner's chief/worker engine: one chief serves the oracle over gRPC, workers
ask it for trials, train them and log them to the same MLflow tracking store under the chief's parent run.

KerasTuner's own chief loop has two gaps this module closes: a worker that dies keeps its trial "ongoing"
forever (so the chief never ends), and the chief only checks for the end every 20 seconds. Here workers send
a heartbeat while they train; a trial whose worker falls silent for `heartbeat_timeout` seconds (or whose
local worker process exits) is handed out again, and the chief stops as soon as the last trial is in.
"""

from __future__ import annotations

import collections
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

import grpc
from keras_tuner.src.engine.oracle import synchronized

CHIEF_TAG = "archsearch.chief"  # host:port of the chief serving the search, on its parent run
SEARCH_KEY_TAG = "archsearch.search_key"  # what workers match their own space and data against
HEARTBEAT_SECONDS = 5.0
WORKER_METADATA = "archsearch-worker"
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
        from keras_tuner.src import protos
        from keras_tuner.src.distribute.oracle_chief import OracleServicer

        chief = self

        class Servicer(OracleServicer):
            """KerasTuner's servicer, noting who asked for what and when each worker was last heard of."""

            def CreateTrial(self, request, context):  # noqa: N802 - gRPC method names
                trial = chief.create_trial(request.tuner_id)
                if trial.status == "STOPPED":
                    self.stop_triggered = True
                elif trial.status == "RUNNING" and on_trial_begin is not None:
                    on_trial_begin(trial.trial_id, {"worker": request.tuner_id})
                return protos.get_service().CreateTrialResponse(trial=trial.to_proto())

            def GetTrial(self, request, context):  # noqa: N802 - workers call it as their heartbeat
                chief.heard_trial(request.trial_id)
                return super().GetTrial(request, context)

            def UpdateTrial(self, request, context):  # noqa: N802
                chief.heard_trial(request.trial_id)
                if not _from_holder(oracle, request.trial_id, _sender(context)):  # a lost worker, back too late
                    return protos.get_service().UpdateTrialResponse(trial=oracle.trials[request.trial_id].to_proto())
                return super().UpdateTrial(request, context)

            def EndTrial(self, request, context):  # noqa: N802
                trial_id = request.trial.trial_id
                chief.heard_trial(trial_id)
                if not _from_holder(oracle, trial_id, _sender(context), take_late=True):
                    return protos.get_service().EndTrialResponse()  # a lost worker, back too late: its trial went to another
                response = super().EndTrial(request, context)
                trial = oracle.trials[trial_id]
                if on_trial_end is not None:
                    on_trial_end(trial_id, trial.status, trial.score)
                return response

        self.oracle = oracle
        self.heartbeat_timeout = heartbeat_timeout
        self.lock = threading.Lock()
        self.worker_heard: dict[str, float] = {}
        self.trial_heard: dict[str, float] = {}
        self.owner: dict[str, str] = {}  # trial id -> the worker it was handed to
        self.fatal: str | None = None
        # KerasTuner raises "too many consecutive failed trials" inside `end_trial`, while holding the oracle's
        # lock, which it then never releases: record the reason instead, and stop the search from here.
        check = oracle._check_consecutive_failures

        def check_consecutive_failures():
            try:
                check()
            except RuntimeError as error:
                self.fatal = str(error)

        oracle._check_consecutive_failures = check_consecutive_failures
        self.servicer = Servicer(oracle)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        protos.get_service_grpc().add_OracleServicer_to_server(self.servicer, self.server)
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError as error:  # grpc's way of saying the address is taken or invalid
            raise OSError(f"the chief cannot listen on {address}: {error}") from None

    def heard_trial(self, trial_id: str) -> None:
        with self.lock:
            now = time.monotonic()
            self.trial_heard[trial_id] = now
            if trial_id in self.owner:
                self.worker_heard[self.owner[trial_id]] = now

    def create_trial(self, tuner_id: str):
        """The oracle's next trial for this worker. While other workers still train, "wait" (IDLE) instead of
        "stop": a lost worker's trial may yet come back to be handed out again. After a fatal error, "stop"."""
        from keras_tuner.src.engine.trial import Trial, TrialStatus

        with self.lock:
            self.worker_heard[tuner_id] = time.monotonic()
        if self.fatal:
            return Trial(self.oracle.get_space(), trial_id="", status=TrialStatus.STOPPED)
        trial = self.oracle.create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            with self.lock:
                self.owner[trial.trial_id] = tuner_id
                self.trial_heard[trial.trial_id] = time.monotonic()
        elif trial.status == TrialStatus.STOPPED and not _search_done(self.oracle):
            _keep_worker(self.oracle, tuner_id)
            trial.status = TrialStatus.IDLE
        if trial.status == TrialStatus.IDLE:
            time.sleep(1.0)  # the worker asks again at once: pace it
        return trial

    def start(self) -> None:
        self.server.start()

    def serve(self, poll: float = 0.5, lost_workers=lambda: []) -> None:
        """Block until the search is done: the oracle said stop, nothing runs, nothing waits for a retry.
        `lost_workers()` names tuner ids known to be gone (local worker processes that exited). Raises
        RuntimeError when the oracle gave up (too many failed trials in a row)."""
        try:
            while True:
                time.sleep(poll)
                for tuner_id in lost_workers():
                    self.reclaim(tuner_id)  # its worker process exited
                self.reclaim_silent()
                if self.done():
                    break
        finally:
            self.server.stop(grace=1.0)
        if self.fatal:
            raise RuntimeError(self.fatal)

    def done(self) -> bool:
        """Every trial is in, and every worker still talking has been told to stop (a worker the server
        left waiting would hang on its next request)."""
        if not (self.servicer.stop_triggered and _search_done(self.oracle)):
            return False
        now = time.monotonic()
        with self.lock:
            waiting = [t for t in self.oracle.tuner_ids if now - self.worker_heard.get(t, now) <= self.heartbeat_timeout]
        return not waiting

    def reclaim_silent(self) -> None:
        now = time.monotonic()
        for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
            with self.lock:
                last = self.trial_heard.get(trial.trial_id, now)
            if now - last > self.heartbeat_timeout:
                self.reclaim(tuner_id, trial.trial_id)  # no heartbeat for heartbeat_timeout seconds

    def reclaim(self, tuner_id: str, trial_id: str | None = None) -> str | None:
        """Hand the worker's trial out again; returns its id (None when the worker held none, or another)."""
        return _hand_out_again(self.oracle, tuner_id, trial_id)


@synchronized
def _hand_out_again(oracle, tuner_id: str, trial_id: str | None = None) -> str | None:
    """The lost worker's trial (if it is still `trial_id`) goes to the front of the queue the oracle serves
    first: its retry queue."""
    oracle.tuner_ids.discard(tuner_id)
    trial = oracle.ongoing_trials.get(tuner_id)
    if trial is None or (trial_id is not None and trial.trial_id != trial_id):
        return None
    del oracle.ongoing_trials[tuner_id]
    oracle._retry_queue.append(trial.trial_id)
    oracle.save()
    return trial.trial_id


@synchronized
def _from_holder(oracle, trial_id: str, worker: str | None, take_late: bool = False) -> bool:
    """Whether a worker's report on a trial counts: it holds the trial, or (`take_late`) the trial was taken
    from it and still waits to be handed out again, in which case the late result is taken and the retry
    dropped. Reports without a worker id (plain KerasTuner workers) count, as in KerasTuner."""
    if trial_id in oracle._retry_queue:
        if take_late:
            oracle._retry_queue.remove(trial_id)
        return True
    holders = [tuner_id for tuner_id, trial in oracle.ongoing_trials.items() if trial.trial_id == trial_id]
    return worker is None or worker in holders


def _sender(context) -> str | None:
    return dict(context.invocation_metadata()).get(WORKER_METADATA)


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _WorkerId(grpc.UnaryUnaryClientInterceptor):
    """Adds the worker's id to every call, so the chief knows who reports (KerasTuner's requests do not say)."""

    def __init__(self, worker_id: str):
        self.metadata = (WORKER_METADATA, worker_id)

    def intercept_unary_unary(self, continuation, details, request):
        metadata = [*(details.metadata or ()), self.metadata]
        return continuation(
            _CallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready, details.compression),
            request,
        )


def identify_worker(oracle_client, worker_id: str, chief: str) -> None:
    """Route a KerasTuner worker's oracle client through a channel that names the worker on every call."""
    from keras_tuner.src import protos

    channel = grpc.intercept_channel(grpc.insecure_channel(chief), _WorkerId(worker_id))
    oracle_client.stub = protos.get_service_grpc().OracleStub(channel)


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
        self.replacements_left = 2 * count  # a worker that fails at once, every time, must not be restarted forever

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
            if self.replacements_left <= 0 and not any(p.poll() is None for p in self.processes.values()):
                raise RuntimeError(f"the local workers keep failing; see their logs in {self.logs}")
            if self.replacements_left > 0:
                self.replacements_left -= len(gone)
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
    tuner.oracle.verbose = 0  # the display is `observer`; KerasTuner's own would print a table per trial
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


def run_worker(space, space_path: Path, chief: str, *, worker_id: str, tuner_dir: Path, tracking_uri: str | None = None,
               threads: int | None = None, observer=None, wait_seconds: float = 60.0):
    """A worker's side: find the chief's search in MLflow, then train the trials the chief hands out."""
    from search.data import load_data
    from search.runner import run_context, trial_tags
    from search.store import resolve_tracking_uri
    from search.strategies import make_tuner
    from search.tracking import Tracker
    from search.trial_server import start_trial_server

    start_trial_server()  # its imports run while this worker finds the chief's search
    data = load_data(space.dataset, space.search.seed)
    uri = resolve_tracking_uri(tracking_uri)
    tracker = Tracker(uri, space.experiment)
    parent = _find_search(tracker, search_key(space.model_dump(mode="json"), data), wait_seconds)
    if parent is None:
        raise WorkerError(
            f"no running search of {space.name!r} in {uri} whose space and data match this worker's; start "
            f"`archsearch chief` with the same space file first (and the same tracking URI; a data path must be the "
            f"same on every machine)"
        )
    parent_id, served_by = parent.info.run_id, parent.data.tags.get(CHIEF_TAG, "")
    if served_by.rpartition(":")[2] != chief.rpartition(":")[2]:
        raise WorkerError(f"--chief {chief}: this space's search is served by a chief on port {served_by.rpartition(':')[2]} ({served_by})")
    set_worker_environment(worker_id, chief)
    params, tags = run_context(space, space_path, data)
    folder = Path(tuner_dir) / space.name / worker_id
    tuner = make_tuner(space, data_path=folder / "data.npz", directory=str(Path(tuner_dir) / space.name), project_name=worker_id,
                       overwrite=True, tracker=tracker, parent_id=parent_id, run_params=params, run_tags=trial_tags(space, tags),
                       observer=observer, threads=threads)
    identify_worker(tuner.oracle, worker_id, chief)
    data.save(folder / "data.npz")
    tuner.search(verbose=0)
    return parent_id


def _find_search(tracker, key: str, wait_seconds: float):
    """The running parent run served by a chief for this space and data (the chief may still be starting)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        found = tracker.client.search_runs(
            [tracker.experiment_id], f"tags.`{SEARCH_KEY_TAG}` = '{key}' and attributes.status = 'RUNNING'",
            order_by=["attributes.start_time DESC"], max_results=1,
        )
        if found and CHIEF_TAG in found[0].data.tags:
            return found[0]
        if time.monotonic() > deadline:
            return None
        time.sleep(1.0)
