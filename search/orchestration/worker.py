"""`archsearch worker`: find the chief's search in MLflow, then train the trials the chief hands out."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from search.data import load_data
from search.distributed.distribution import search_key
from search.distributed.worker import WorkerTuner, identify_worker, set_worker_environment
from search.engine.trial_server import start_trial_server
from search.errors import ChiefLost, WorkerError
from search.orchestration.run import run_context, trial_tags
from search.reporting.progress import TrialObserver
from search.spec.schema import Space
from search.tracking.client import Patience, Tracker
from search.tracking.locations import resolve_tracking_uri


def run_worker(space: Space, space_path: Path, chief: str, *, worker_id: str, tuner_dir: Path, tracking_uri: str | None = None,
               threads: int | None = None, observer: TrialObserver | None = None, wait_seconds: float = 60.0,
               tracking_timeout: float = 300.0) -> str:
    """Train trials of the chief's search until it has none left; returns the search's parent run id."""
    start_trial_server()  # its imports run while this worker finds the chief's search
    data = load_data(space.dataset)
    uri = resolve_tracking_uri(tracking_uri)
    tracker = Tracker(uri, space.experiment, Patience(tracking_timeout, (observer or TrialObserver()).note))
    found = _find_search(tracker, search_key(space.model_dump(mode="json"), data.fingerprint), wait_seconds)
    if found is None:
        raise WorkerError(
            f"no running search of {space.name!r} in {uri} whose space and data match this worker's; start "
            f"`archsearch chief` with the same space file first (and the same tracking URI; a data path must be the "
            f"same on every machine)"
        )
    parent_id, served_by = found
    if served_by.rpartition(":")[2] != chief.rpartition(":")[2]:
        raise WorkerError(f"--chief {chief}: this space's search is served by a chief on port {served_by.rpartition(':')[2]} ({served_by})")
    set_worker_environment(worker_id, chief)
    params, tags = run_context(space, space_path, data)
    folder = Path(tuner_dir) / space.name / worker_id
    tuner = WorkerTuner.for_space(space, data_path=folder / "data.npz", directory=str(Path(tuner_dir) / space.name),
                                  project_name=worker_id, overwrite=True, tracker=tracker, parent_id=parent_id, run_params=params,
                                  run_tags=trial_tags(space, tags), observer=observer, threads=threads)
    identify_worker(tuner.oracle, worker_id, chief)
    data.save(folder / "data.npz")
    try:
        tuner.search(verbose=0)
    except grpc.RpcError as error:
        raise ChiefLost(f"lost the chief at {chief}: {error.code().name} ({error.details()})") from None
    return parent_id


def _find_search(tracker: Tracker, key: str, wait_seconds: float) -> tuple[str, str] | None:
    """The running search served by a chief for this space and data (the chief may still be starting)."""
    deadline = time.monotonic() + wait_seconds
    while (found := tracker.served_search(key)) is None and time.monotonic() <= deadline:
        time.sleep(1.0)
    return found
