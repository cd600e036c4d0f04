"""The chief of a distributed search, on KerasTuner's chief/worker engine: it serves the oracle over gRPC,
workers ask it for trials, train them and log them to the same MLflow store under the chief's parent run.

KerasTuner's own chief loop has two gaps closed here: a worker that dies keeps its trial "ongoing" forever
(so the chief never ends), and the chief only checks for the end every 20 seconds. Here workers send a
heartbeat while they train; a trial whose worker falls silent for `heartbeat_timeout` seconds (or whose
local worker process exits) is handed out again, and the chief stops as soon as the last trial is in.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from keras_tuner.engine.trial import Trial, TrialStatus

from search.distributed.distribution import Distribution
from search.distributed.local import LocalWorkers
from search.engine import compat
from search.engine.front import log_front
from search.errors import SearchStopped, TrackingUnreachable, WorkerError
from search.reporting.progress import TrialObserver
from search.spec.metrics import best_metric
from search.tracking.client import Tracker
from search.tracking.tags import CHIEF_TAG, SEARCH_KEY_TAG


def check_can_listen(host: str, port: int) -> None:
    """Refuse a taken or invalid address before the search's parent run is created."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise WorkerError(f"--host/--port: cannot listen on {host}:{port} ({error.strerror or error})") from None


class Chief:
    """Serves one oracle until every trial is done; hands out again the trials of lost workers."""

    def __init__(self, oracle: compat.Oracle, address: str, heartbeat_timeout: float, observer: TrialObserver | None = None):
        self.oracle = oracle
        self.heartbeat_timeout = heartbeat_timeout
        self.observer = observer or TrialObserver()
        self.lock = threading.Lock()
        self.worker_heard: dict[str, float] = {}
        self.trial_heard: dict[str, float] = {}
        self.owner: dict[str, str] = {}  # trial id -> the worker it was handed to
        self.ended = 0  # trials ended so far; serve's loop acts on a change (`trials_ended`)
        oracle.served = True  # too many failures are recorded in `oracle.stopped`, and the search stopped from here
        self.servicer = compat.Servicer(self)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.servicer.add_to(self.server)
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError as error:  # grpc's way of saying the address is taken or invalid
            raise WorkerError(f"the chief cannot listen on {address}: {error}") from None

    def heard_trial(self, trial_id: str) -> None:
        with self.lock:
            now = time.monotonic()
            self.trial_heard[trial_id] = now
            if trial_id in self.owner:
                self.worker_heard[self.owner[trial_id]] = now

    def trial_begun(self, trial_id: str, worker: str) -> None:
        self.observer.trial_begin(trial_id, {"worker": worker})

    def trial_ended(self, trial_id: str) -> None:
        trial = self.oracle.trials[trial_id]
        finished = trial.status == TrialStatus.COMPLETED
        score = {best_metric(self.oracle.objective.name): trial.score} if finished and trial.score is not None else {}
        self.observer.trial_end(trial_id, "FINISHED" if finished else "FAILED", score)
        with self.lock:
            self.ended += 1

    def create_trial(self, tuner_id: str) -> Trial:
        """The oracle's next trial for this worker. While other workers still train, "wait" (IDLE) instead of
        "stop": a lost worker's trial may yet come back to be handed out again. After a fatal error, "stop"."""
        with self.lock:
            self.worker_heard[tuner_id] = time.monotonic()
        if self.oracle.stopped or self.oracle.broken:
            return Trial(self.oracle.get_space(), trial_id="", status=TrialStatus.STOPPED)
        trial = self.oracle.create_trial(tuner_id)
        if trial.status == TrialStatus.RUNNING:
            with self.lock:
                self.owner[trial.trial_id] = tuner_id
                self.trial_heard[trial.trial_id] = time.monotonic()
        elif trial.status == TrialStatus.STOPPED and not self.oracle.all_trials_in():
            self.oracle.keep_worker(tuner_id)
            trial.status = TrialStatus.IDLE
        if trial.status == TrialStatus.IDLE:
            time.sleep(1.0)  # the worker asks again at once: pace it
        return trial

    def start(self) -> None:
        self.server.start()

    def serve(self, poll: float = 0.5, lost_workers=lambda: [], trials_ended=lambda: None) -> None:
        """Block until the search is done: the oracle said stop, nothing runs, nothing waits for a retry.
        `lost_workers()` names tuner ids known to be gone (local worker processes that exited);
        `trials_ended()` is called here, not in a request's thread, after trials have ended (a call that waits
        for the tracking server keeps no worker waiting). Raises SearchStopped when the oracle gave up (too
        many failed trials in a row)."""
        seen = 0
        try:
            while True:
                time.sleep(poll)
                if self.ended != seen:
                    seen = self.ended
                    trials_ended()
                for tuner_id in lost_workers():
                    self.reclaim(tuner_id, why="its process exited")
                self.reclaim_silent()
                if self.done() or self.oracle.broken:
                    break
        finally:
            self.server.stop(grace=1.0)
        if self.oracle.broken:
            raise self.oracle.broken
        if self.oracle.stopped:
            raise SearchStopped(self.oracle.stopped)

    def done(self) -> bool:
        """Every trial is in, and every worker still talking has been told to stop (a worker the server
        left waiting would hang on its next request)."""
        if not (self.servicer.stopped and self.oracle.all_trials_in()):
            return False
        now = time.monotonic()
        with self.lock:
            waiting = [t for t in self.oracle.workers() if now - self.worker_heard.get(t, now) <= self.heartbeat_timeout]
        return not waiting

    def reclaim_silent(self) -> None:
        now = time.monotonic()
        for tuner_id, trial in self.oracle.ongoing().items():
            with self.lock:
                last = self.trial_heard.get(trial.trial_id, now)
            if now - last > self.heartbeat_timeout:
                self.reclaim(tuner_id, trial.trial_id, why=f"silent for {self.heartbeat_timeout:g} s")

    def reclaim(self, tuner_id: str, trial_id: str | None = None, why: str = "lost") -> str | None:
        """Hand the worker's trial out again, saying so on the display; returns its id (None when the worker
        held none, or another)."""
        handed = self.oracle.hand_out_again(tuner_id, trial_id)
        if handed is not None:
            self.observer.note(f"worker {tuner_id} was lost ({why}); its trial {handed} goes to the next worker that asks")
        return handed


def serve(tuner, distribution: Distribution, tracker: Tracker, parent_id: str, key: str, space_path: Path, tracking_uri: str,
          tuner_dir: Path, observer: TrialObserver) -> None:
    """The chief's side of a search: serve the oracle, start local workers, return when all trials are in."""
    tuner.oracle.verbose = 0  # the display is `observer`; KerasTuner's own would print a table per trial
    tuner.save()
    chief = Chief(tuner.oracle, distribution.address, distribution.heartbeat_timeout, observer)
    host = distribution.address.rpartition(":")[0]
    address = f"{host}:{chief.port}"
    chief.start()
    tracker.set_tags(parent_id, {CHIEF_TAG: address, SEARCH_KEY_TAG: key})
    workers = LocalWorkers(space_path, address, tracking_uri, Path(tuner_dir), distribution.local_workers,
                           distribution.threads_per_worker(), logs=Path(tuner_dir) / tuner.project_name)
    workers.start()
    try:
        # the chief alone logs a multi-objective search's front, so its hypervolume curve has one writer
        chief.serve(lost_workers=lambda: workers.lost(chief.done()), trials_ended=lambda: _log_front(tracker, parent_id, tuner.space, observer))
    finally:
        workers.stop()


def _log_front(tracker: Tracker, parent_id: str, space, observer: TrialObserver) -> None:
    """The front after trials ended. A failure costs no trial: the search logs the front again at its end
    (a tracking server that stopped answering still stops the search, resumable)."""
    try:
        log_front(tracker, parent_id, space)
    except TrackingUnreachable:
        raise
    except Exception as error:  # noqa: BLE001 - reported, and made good by the search's last front
        observer.note(f"the front could not be logged after this trial ({type(error).__name__}: {error}); it is logged at the end")
