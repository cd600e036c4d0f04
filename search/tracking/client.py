"""The only module that imports mlflow: the store, parent and nested runs, and reading runs back.

Everything goes through an `MlflowClient` bound to an explicit tracking URI, so nothing depends on
process-global MLflow state. The default store is a sqlite database with an artifact folder beside it
under `./mlruns` (MLflow's plain file store is deprecated).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search.errors import TrackingError, TrackingUnreachable, reported_as
from search.tracking.locations import masked, sqlite_path
from search.tracking.store import check_server, check_store
from search.tracking.tags import (
    CHIEF_TAG,
    EXPERIMENT_KIND,
    FAILURE_TAG,
    MODEL_ARTIFACT,
    MODEL_GROUP_TAG,
    MODEL_REPLICATE_TAG,
    MODEL_TAG,
    NOTE_TAG,
    PARENT_TAG,
    ROLE_TAG,
    RUNS_VIEW_TAG,
    SEARCH_KEY_TAG,
)

MAX_PARAM_LENGTH = 6000
DEFAULT_UI_COLUMNS = ("attributes.`Source`", "attributes.`Models`")  # of the UI's defaults, those runs fill


def create_sqlite_store(db: Path) -> None:
    """MLflow builds a new sqlite store's tables in a few dozen migration steps; a kill in between leaves
    a store that no later run can open. So a new store is built under a temporary name and linked into
    place in one step (a link, not a rename, so that a store another process made meanwhile is kept).
    It is built by copying an empty store migrated once per MLflow version (`_empty_store`): the migrations
    take seconds, a copy milliseconds."""
    if db.exists() or db.is_symlink():
        check_store(db)  # a damaged store is refused, never built over
        return
    temporary = db.with_name(f".{db.name}.{os.getpid()}.creating")
    with reported_as(TrackingError, f"create the MLflow store {db}"):
        db.parent.mkdir(parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        try:
            template = _empty_store()
            if template is None:
                MlflowClient(f"sqlite:///{temporary}").search_experiments(max_results=1)
            else:
                shutil.copyfile(template, temporary)
                # MLflow's own "Default" experiment points where the store was built: point it beside this one
                with contextlib.closing(sqlite3.connect(temporary)) as connection, connection:
                    connection.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (_artifact_root(db),))
        except BaseException:  # a full disk, a kill: no half-built store is left behind
            temporary.unlink(missing_ok=True)
            raise
    try:
        os.link(temporary, db)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _artifact_root(db: Path) -> str:
    """Where the runs of the store at `db` keep their artifacts: `artifacts/` beside it."""
    return (db.parent / "artifacts").resolve().as_uri()


def _empty_store() -> Path | None:
    """A migrated, empty sqlite store for this MLflow version in the user's cache (`$XDG_CACHE_HOME` or
    ~/.cache, under archsearch/), built there once, atomically; None where the cache cannot be written
    (the caller then migrates its store itself)."""
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "archsearch"
    template = cache / f"empty-store-mlflow-{mlflow.__version__}.db"
    try:
        check_store(template)
        return template
    except TrackingError:
        pass  # missing or damaged: built again
    building = cache / f".{template.name}.{os.getpid()}.building"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        building.unlink(missing_ok=True)
        MlflowClient(f"sqlite:///{building}").search_experiments(max_results=1)
        os.replace(building, template)
    except (OSError, MlflowException):
        with contextlib.suppress(OSError):
            building.unlink(missing_ok=True)
        return None
    return template


@dataclass(frozen=True)
class Patience:
    """How long to wait for a tracking server that does not answer, and whom to tell meanwhile."""

    timeout: float = 300.0
    note: Callable[[str], None] = lambda message: None
    poll: float = 2.0


_UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
# What a server says while its database is down (MLflow answers 503 TEMPORARILY_UNAVAILABLE) or a proxy in
# front of it has no server behind it: waited for, as a server that does not answer is.
_UNAVAILABLE_CODES = frozenset({"TEMPORARILY_UNAVAILABLE", "SERVICE_UNDER_MAINTENANCE"})
_UNAVAILABLE_STATUS = frozenset({502, 503, 504})
NOTE_EVERY = 30.0  # seconds between the display's notes while a server is waited for


def unanswered(error: BaseException) -> bool:
    """Whether `error` means the tracking server (or its database) does not answer now, rather than that
    the request was wrong: a call worth repeating once it is back."""
    if isinstance(error, _UNREACHABLE):
        return True
    if not isinstance(error, MlflowException):
        return False
    cause = error.__cause__ or error.__context__
    return isinstance(cause, _UNREACHABLE) or error.error_code in _UNAVAILABLE_CODES or error.get_http_status_code() in _UNAVAILABLE_STATUS


class _PatientClient:
    """An MlflowClient whose calls wait for a tracking server that went away, or whose database did,
    instead of failing the search (or counting a trial as a failed architecture) at the first refused
    request: the display says so every `NOTE_EVERY` s, every call is retried until the server is back or
    `patience.timeout` has passed, and then `TrackingUnreachable` ends the command with the search's state
    kept for a resume. MLflow's own retries are cut short for this (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`) by
    the commands that log."""

    def __init__(self, client: MlflowClient, uri: str, patience: Patience):
        self._client, self._uri, self._patience = client, masked(uri), patience

    def __getattr__(self, name: str):
        method = getattr(self._client, name)

        @functools.wraps(method)
        def patient(*args, **kwargs):
            waited_since = noted_at = None
            while True:
                try:
                    result = method(*args, **kwargs)
                except (MlflowException, *_UNREACHABLE) as error:  # artifact uploads raise requests' own errors
                    if not unanswered(error):
                        raise
                    now = time.monotonic()
                    waited_since = now if waited_since is None else waited_since
                    if noted_at is None or now - noted_at >= NOTE_EVERY:
                        noted_at = now
                        self._patience.note(f"waiting for the tracking server at {self._uri} ({now - waited_since:.0f} s; it does "
                                            f"not answer; giving up after {self._patience.timeout:g} s)")
                    if now - waited_since >= self._patience.timeout:
                        raise TrackingUnreachable(
                            f"the tracking server at {self._uri} did not answer for {self._patience.timeout:g} s "
                            "(--tracking-timeout); the search's state is kept: run the same command again to continue it"
                        ) from None
                    time.sleep(self._patience.poll)
                    continue
                if waited_since is not None:
                    self._patience.note(f"the tracking server at {self._uri} answers again "
                                        f"(after {time.monotonic() - waited_since:.0f} s); continuing")
                return result

        return patient


class Tracker:
    """One experiment in one MLflow store."""

    def __init__(self, tracking_uri: str, experiment: str, patience: Patience | None = None):
        self.tracking_uri = tracking_uri
        db = sqlite_path(tracking_uri)
        artifact_location = None
        if db is not None:
            create_sqlite_store(db)
            artifact_location = _artifact_root(db)
        self.client = _PatientClient(MlflowClient(tracking_uri), tracking_uri, patience or Patience())
        try:
            found = self.client.get_experiment_by_name(experiment)
        except MlflowException as error:  # e.g. a store of another MLflow version: MLflow says how to upgrade it
            raise TrackingError(f"cannot open the MLflow store {tracking_uri}: {str(error).splitlines()[0]}") from None
        if found is not None and found.lifecycle_stage == "deleted":
            raise TrackingError(
                f"the MLflow experiment {experiment!r} was deleted in {tracking_uri}: restore it "
                "(`mlflow experiments restore`) or set tracking.experiment to another name"
            )
        self.experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(experiment, artifact_location=artifact_location, tags=EXPERIMENT_KIND)
        )
        if found is not None:  # an experiment from before archsearch tagged its kind; a kind already set is kept
            for key, value in EXPERIMENT_KIND.items():
                if key not in found.tags:
                    self.client.set_experiment_tag(self.experiment_id, key, value)

    def show_columns(self, params: list[str], metrics: list[str]) -> None:
        """The runs table's columns in the UI (`RUNS_VIEW_TAG`): these params and metrics beside MLflow's own."""
        columns = [*DEFAULT_UI_COLUMNS, *(f"params.`{name}`" for name in params), *(f"metrics.`{name}`" for name in metrics)]
        view = {"searchFilter": "", "orderByKey": "attributes.start_time", "orderByAsc": False, "startTime": "ALL",
                "lifecycleFilter": "Active", "modelVersionFilter": "All Runs", "datasetsFilter": [], "selectedColumns": columns}
        self.client.set_experiment_tag(self.experiment_id, RUNS_VIEW_TAG, json.dumps(view))

    def start_run(self, name: str, params: dict, tags: dict, parent_id: str | None = None) -> str:
        tags = dict(tags)
        if parent_id is not None:
            tags[PARENT_TAG] = parent_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags={k: str(v) for k, v in tags.items()})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict) -> None:
        batch = [Param(k, _param_text(v)) for k, v in params.items()]
        for i in range(0, len(batch), 100):  # MLflow's per-request limit
            self.client.log_batch(run_id, params=batch[i : i + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and math.isfinite(v)]
        if batch:
            self.client.log_batch(run_id, metrics=batch)

    def log_curves(self, run_id: str, curves: list[dict[str, float]], first_step: int = 1) -> None:
        """Per-epoch values, one MLflow step per epoch (step 1 = after the first epoch)."""
        now = int(time.time() * 1000)
        batch = [
            Metric(key, float(value), now, first_step + i)
            for i, logs in enumerate(curves)
            for key, value in logs.items()
            if math.isfinite(value)
        ]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[i : i + 1000])

    def set_tags(self, run_id: str, tags: dict) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def end_run(self, run_id: str, status: str, reason: str | None = None) -> None:
        """FINISHED, FAILED or KILLED; a reason is kept as a tag and as the run's description in the UI."""
        if reason:
            self.set_tags(run_id, {FAILURE_TAG: reason[:5000], NOTE_TAG: reason[:5000]})
        self.client.set_terminated(run_id, status=status)

    def reopen(self, run_id: str) -> None:
        """Mark a search's parent run RUNNING again, to continue logging to it on resume."""
        self.client.update_run(run_id, status="RUNNING")

    def end_running_children(self, parent_id: str, status: str, reason: str, trial_id: str | None = None) -> int:
        """End the nested runs a killed process (or, for `trial_id`, a lost worker) left RUNNING; returns how many."""
        of_trial = f" and params.trial_id = '{trial_id}'" if trial_id is not None else ""
        running = self.client.search_runs(
            [self.experiment_id], f"tags.`{PARENT_TAG}` = '{parent_id}' and attributes.status = 'RUNNING'{of_trial}"
        )
        for run in running:
            self.end_run(run.info.run_id, status, reason)
        return len(running)

    def finished_trial(self, parent_id: str, trial_id: str) -> dict[str, float] | None:
        """The metrics of a FINISHED run of this trial under this search, if one exists (a process
        killed between logging a trial and KerasTuner saving it must not run it twice)."""
        found = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{PARENT_TAG}` = '{parent_id}' and params.trial_id = '{trial_id}' and attributes.status = 'FINISHED'",
            max_results=1,
        )
        return dict(found[0].data.metrics) if found else None

    def log_model(self, run_id: str, folder: Path, group: str, replicate: int) -> None:
        """Upload a model saved by `save_keras_model` as the run's `model` artifact, then tag the run: a kill
        between the two leaves an untagged upload, never a tag without its model."""
        self.client.log_artifacts(run_id, str(folder), MODEL_ARTIFACT)
        self.set_tags(run_id, {MODEL_TAG: MODEL_ARTIFACT, MODEL_GROUP_TAG: group, MODEL_REPLICATE_TAG: replicate})

    def model_holders(self, parent_id: str) -> list:
        """The search's trial runs that keep a model, as MLflow runs (their group in the MODEL_GROUP_TAG)."""
        return self.client.search_runs([self.experiment_id], f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`{MODEL_TAG}` = '{MODEL_ARTIFACT}'")

    def drop_model(self, run_id: str) -> None:
        """Untag first, then delete: a kill in between leaves files no reader looks for, not a tag without them."""
        self.client.delete_tag(run_id, MODEL_TAG)
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        run = self.client.get_run(run_id)
        # the tracking URI resolves a server's mlflow-artifacts:/ location (without it: the process-global one)
        get_artifact_repository(run.info.artifact_uri, tracking_uri=self.tracking_uri).delete_artifacts(MODEL_ARTIFACT)

    def served_search(self, key: str) -> tuple[str, str] | None:
        """(parent run id, chief address) of the running search a chief serves under `key`, if any."""
        found = self.client.search_runs(
            [self.experiment_id], f"tags.`{SEARCH_KEY_TAG}` = '{key}' and attributes.status = 'RUNNING'",
            order_by=["attributes.start_time DESC"], max_results=1,
        )
        if found and CHIEF_TAG in found[0].data.tags:
            return found[0].info.run_id, found[0].data.tags[CHIEF_TAG]
        return None

    def runs(self, parent_id: str | None = None) -> pd.DataFrame:
        """Runs of this experiment as a DataFrame (params.*, metrics.*, tags.* columns), oldest first."""
        filter_string = f"tags.`{PARENT_TAG}` = '{parent_id}'" if parent_id else ""
        return runs_frame(self.client, [self.experiment_id], filter_string)


def abandon_search(tracking_uri: str, parent_id: str, reason: str) -> None:
    """End a search's parent run and its RUNNING nested runs as KILLED."""
    client = MlflowClient(tracking_uri)
    parent = client.get_run(parent_id)
    tracker = Tracker(tracking_uri, client.get_experiment(parent.info.experiment_id).name)
    tracker.end_running_children(parent_id, "KILLED", reason)
    if parent.info.status == "RUNNING":
        tracker.end_run(parent_id, "KILLED", reason)


def experiment_runs(tracking_uri: str, experiment: str, role: str) -> pd.DataFrame:
    """Runs of one role ("search" parents or "trial" runs) of an existing experiment; never creates one."""
    if sqlite_path(tracking_uri) is not None:
        check_store(sqlite_path(tracking_uri))
    elif tracking_uri.startswith(("http://", "https://")):
        check_server(tracking_uri)
    try:
        client = MlflowClient(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        if found is None or found.lifecycle_stage == "deleted":
            known = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
            raise TrackingError(f"no experiment {experiment!r} in {tracking_uri}; known: {known}")
        return runs_frame(client, [found.experiment_id], f"tags.`{ROLE_TAG}` = '{role}'")
    except MlflowException as error:  # a store of another MLflow version (MLflow says how to upgrade it), a server gone
        raise TrackingError(f"cannot read the MLflow store {tracking_uri}: {str(error).splitlines()[0]}") from None


def runs_frame(client: MlflowClient, experiment_ids: list[str], filter_string: str = "") -> pd.DataFrame:
    rows, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=5000, order_by=["attributes.start_time ASC"], page_token=token)
        for run in page:
            row = {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "experiment_id": run.info.experiment_id,
                "status": run.info.status,
                "start_time": run.info.start_time,
                "end_time": run.info.end_time,
            }
            row |= {f"params.{k}": v for k, v in run.data.params.items()}
            row |= {f"metrics.{k}": v for k, v in run.data.metrics.items()}
            row |= {f"tags.{k}": v for k, v in run.data.tags.items()}
            rows.append(row)
        token = page.token
        if not token:
            return pd.DataFrame(rows)


def metric_histories(tracking_uri: str, run_ids: list[str], keys: tuple[str, ...]) -> pd.DataFrame:
    """Per-epoch values of `keys` for each run, long form: run_id, key, step, value."""
    client = MlflowClient(tracking_uri)
    rows = [
        (run_id, key, metric.step, metric.value)
        for run_id in run_ids
        for key in keys
        for metric in client.get_metric_history(run_id, key)
    ]
    return pd.DataFrame(rows, columns=["run_id", "key", "step", "value"])


def preload_model_format() -> None:
    """Import MLflow's Keras flavour now (about a second), in a process that forks trial processes, rather
    than in every trial process at its first saved model."""
    import mlflow.keras  # noqa: F401


def save_keras_model(model, folder: Path, example) -> None:
    """`model` in MLflow's Keras format (MLmodel, signature, an input example) in `folder`, replaced whole:
    a kill mid-save leaves the previous folder or none."""
    import shutil

    import keras
    import mlflow.keras
    from mlflow.models import infer_signature

    folder = Path(folder)
    temporary = folder.with_name(f".{folder.name}.{os.getpid()}.saving")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    signature = infer_signature(example, model.predict(example, verbose=0))
    # requirements given, not inferred: MLflow would load the model in a subprocess to find them
    requirements = [f"keras=={keras.__version__}", f"tensorflow=={_version('tensorflow')}"]
    mlflow.keras.save_model(model, str(temporary), signature=signature, input_example=example, pip_requirements=requirements)
    shutil.rmtree(folder, ignore_errors=True)
    temporary.rename(folder)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


@contextlib.contextmanager
def download_model(tracking_uri: str, run_id: str) -> Iterator[Path]:
    """The model folder a trial run keeps (MLmodel, data/model.keras), downloaded into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="archsearch-model-") as temporary:
        with reported_as(TrackingError, f"download the model of run {run_id}"):
            folder = Path(MlflowClient(tracking_uri).download_artifacts(run_id, MODEL_ARTIFACT, temporary))
        yield folder


def read_artifact_text(tracking_uri: str, run_id: str, artifact_file: str) -> str:
    """A text file a run logged (`Tracker.log_text`), such as a search's resolved `space.yaml`."""
    with tempfile.TemporaryDirectory(prefix="archsearch-text-") as temporary:
        with reported_as(TrackingError, f"read {artifact_file} of run {run_id}"):
            path = MlflowClient(tracking_uri).download_artifacts(run_id, artifact_file, temporary)
            return Path(path).read_text()


def run_params(tracking_uri: str, run_id: str) -> dict[str, str]:
    """A run's params as MLflow holds them (text, untouched by the tables' typing)."""
    return dict(MlflowClient(tracking_uri).get_run(run_id).data.params)


def load_keras_model(tracking_uri: str, run_id: str):
    """The model a trial run keeps, as a compiled Keras model."""
    import mlflow.keras

    with download_model(tracking_uri, run_id) as folder:
        return mlflow.keras.load_model(str(folder))


def register_model(tracking_uri: str, run_id: str, name: str) -> str:
    """Put a kept model in MLflow's model registry under `name`; returns the new version."""
    client = MlflowClient(tracking_uri)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    run = client.get_run(run_id)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/{MODEL_ARTIFACT}", run_id=run_id)
    return version.version


def log_folder(tracking_uri: str, run_id: str, folder: Path, artifact_path: str) -> None:
    MlflowClient(tracking_uri).log_artifacts(run_id, str(folder), artifact_path)


def _param_text(value) -> str:
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."

