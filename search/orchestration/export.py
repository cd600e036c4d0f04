"""Trained models back out of the store: the kept model of a search's best trial (or of a given run) as a
Keras model, a `.keras` file, or a version in MLflow's model registry."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from search.errors import OutputError, TrackingError
from search.orchestration.report import load_comparison
from search.reporting.tables import default_metric, ranking_metric
from search.spec.metrics import minimised
from search.tracking.client import download_model, load_keras_model, register_model
from search.tracking.locations import resolve_tracking_uri


@dataclass(frozen=True)
class KeptModel:
    """A trial run that keeps its trained model."""

    tracking_uri: str
    run_id: str
    run_name: str
    experiment: str
    metrics: dict[str, float]


def kept_model(tracking_uri: str | None, experiment: str, *, run_id: str | None = None, where: str | None = None) -> KeptModel:
    """The trial whose model to take: `run_id`'s, or the best kept one of the experiment's latest searches
    (matching `where`) by the validation score that selects (never by the test part)."""
    uri = resolve_tracking_uri(tracking_uri)
    _, trials = load_comparison(uri, [experiment], where=where)
    if run_id is not None:
        found = trials[trials["run_id"] == run_id]
        if found.empty:
            _, every = load_comparison(uri, [experiment], all_searches=True)
            found = every[every["run_id"] == run_id]
        if found.empty:
            raise TrackingError(f"--run {run_id}: no trial run of that id in experiment {experiment!r}")
        if found["model"].isna().all():
            raise TrackingError(f"run {run_id} ({found['run_name'].iloc[0]}) keeps no model: under training.save_models: best "
                                f"only each search's best trial does; set save_models: all to keep every trial's")
        return kept(uri, found.iloc[0])
    return kept(uri, ranked_kept(trials, experiment, where).iloc[0])


def ranked_kept(trials: pd.DataFrame, experiment: str, where: str | None = None) -> pd.DataFrame:
    """The finished trials that keep a model, best first by the validation score that selects (never by the
    test part); TrackingError when there is none."""
    keeping = trials[trials["model"].notna() & (trials["status"] == "FINISHED")]
    if keeping.empty:
        raise TrackingError(f"no trial of experiment {experiment!r} keeps a model{' matching --where' if where else ''}: "
                            "it ran with training.save_models: none, or before models were kept; run the search again (--fresh)")
    ranked_by = ranking_metric(keeping, default_metric(keeping))
    return keeping.sort_values(ranked_by, ascending=minimised(ranked_by), kind="stable")


def kept(uri: str, row: pd.Series) -> KeptModel:
    metrics = {k: float(v) for k, v in row.items() if isinstance(v, float) and pd.notna(v) and not k.startswith("params")}
    return KeptModel(uri, row["run_id"], row["run_name"], row["experiment"], metrics)


def load_model(model: KeptModel):
    """The kept model as a compiled Keras model (loss and accuracy, for `evaluate`)."""
    import search.models.blocks  # noqa: F401 - registers the custom layers a saved model may name

    return load_keras_model(model.tracking_uri, model.run_id)


def check_export_file(out: Path, *, force: bool) -> None:
    """`out` can take the model: a new `.keras` file in an existing folder, or one `force` replaces."""
    if out.suffix != ".keras":
        raise OutputError(f"--out {out}: a Keras model file ends in .keras, e.g. {out.with_suffix('.keras')}")
    if out.is_dir():
        raise OutputError(f"--out {out} is a folder: give a file name, e.g. {out / 'model.keras'}")
    if not out.parent.is_dir():
        raise OutputError(f"--out {out}: the folder {out.parent} does not exist")
    if (out.exists() or out.is_symlink()) and not force:
        raise OutputError(f"--out {out} already exists: pass --force to replace it")


def export_model(model: KeptModel, out: Path, *, force: bool = False) -> Path:
    """Write the kept model's `.keras` file to `out`, whole or not at all."""
    check_export_file(out, force=force)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        with download_model(model.tracking_uri, model.run_id) as folder:
            shutil.copyfile(Path(folder) / "data" / "model.keras", temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, out)
    except OSError as error:
        raise OutputError(f"cannot write {out}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return out


def register(model: KeptModel, name: str) -> str:
    """The kept model as a new version of `name` in MLflow's model registry; returns the version."""
    return register_model(model.tracking_uri, model.run_id, name)
