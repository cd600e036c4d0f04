"""`archsearch compare` and `archsearch report`: MLflow runs -> comparison tables -> a report folder
(tables in every format, figures as PNG and SVG, index.md and index.html), also logged to the search's
parent run so the MLflow UI shows it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from search.reporting.destinations import check_report_folder, make_report_folder, writing
from search.reporting.filters import filter_trials
from search.reporting.pages import write_indexes, write_tables
from search.reporting.tables import Comparison, compare, latest_searches, trials_frame
from search.tracking.locations import resolve_tracking_uri
from search.tracking.reader import read_trials
from search.tracking.tags import PARENT_TAG


def load_comparison(
    tracking_uri: str | None,
    experiments: list[str],
    *,
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    metric: str | None = None,
    where: str | None = None,
    top: int | None = None,
    all_searches: bool = False,
    baseline: str | None = None,
    choose: list[str] | None = None,
) -> tuple[Comparison, pd.DataFrame]:
    """Read the experiments' trials and compare them with `baseline` (default: the best mean); returns
    the comparison and the trials."""
    runs = read_trials(resolve_tracking_uri(tracking_uri), experiments)
    trials = trials_frame(runs)
    trials["parent_id"] = runs.get(f"tags.{PARENT_TAG}")
    trials["start_time"] = runs["start_time"]
    if not all_searches:
        trials = latest_searches(trials)
    if where:
        trials = filter_trials(trials, where)
    return compare(trials, rows=rows, cols=cols, metric=metric, top=top, baseline=baseline, choose=choose), trials


def write_report(
    tracking_uri: str | None,
    experiments: list[str],
    out: Path,
    *,
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    metric: str | None = None,
    where: str | None = None,
    baseline: str | None = None,
    choose: list[str] | None = None,
    log_to_mlflow: bool = True,
    overwrite: bool = True,
) -> list[Path]:
    """Write the report folder; returns the files written. `overwrite=False` refuses a folder that already
    holds a report (the CLI's default, against a typo); a study rewrites its own results folder."""
    from search.reporting import figures  # matplotlib: only for a report, not for `compare`
    from search.tracking.client import log_folder, metric_histories  # mlflow: only for a report

    check_report_folder(out, force=overwrite)  # before the store is read: a refused folder costs nothing
    uri = resolve_tracking_uri(tracking_uri)
    comparison, trials = load_comparison(uri, experiments, rows=rows, cols=cols, metric=metric, where=where, baseline=baseline, choose=choose)
    finished = trials[trials["status"] == "FINISHED"]
    curves = metric_histories(uri, finished["run_id"].tolist(), ("accuracy", "val_accuracy"))
    drawn = {
        "learning_curves": figures.learning_curves(curves, finished, comparison.keys[:2]),
        "metric_by_axis": figures.metric_by_axis(comparison),
        "metric_vs_cost": figures.metric_vs_cost(comparison),
    }
    make_report_folder(out)
    with writing(out):
        written = write_tables(out, comparison, cols)
        for name, figure in drawn.items():
            for suffix in ("png", "svg"):
                figure.savefig(out / f"{name}.{suffix}", dpi=150)
                written.append(out / f"{name}.{suffix}")
        written += write_indexes(out, comparison, experiments, list(drawn), cols)
    if log_to_mlflow:
        for parent in latest_parents(trials):
            log_folder(uri, parent, out, "report")
    return written


def latest_parents(trials: pd.DataFrame) -> list[str]:
    """The most recent search (parent run) of each experiment in the report."""
    latest = trials.dropna(subset=["parent_id"]).sort_values("start_time").groupby("experiment")["parent_id"].last()
    return latest.tolist()
