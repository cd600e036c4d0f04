"""`archsearch compare` and `archsearch report`: MLflow runs -> comparison tables -> a report folder
(tables in every format, figures as PNG and SVG, index.md and index.html), also logged to the search's
parent run so the MLflow UI shows it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from search.reporting.destinations import check_report_folder, make_report_folder, writing
from search.reporting.filters import filter_trials
from search.reporting.ensembles import ensembles_table
from search.reporting.pages import write_ensembles, write_figures, write_indexes, write_tables
from search.reporting.tables import Comparison, compare, latest_searches, trials_frame
from search.tracking.locations import resolve_tracking_uri
from search.tracking.reader import read_trials
from search.tracking.tags import ENSEMBLE_ROLE, PARENT_TAG


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
    pareto: list[str] | None = None,
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
    return compare(trials, rows=rows, cols=cols, metric=metric, top=top, baseline=baseline, choose=choose, pareto=pareto), trials


def write_report(
    tracking_uri: str | None,
    experiments: list[str],
    out: Path,
    *,
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    metric: str | None = None,
    where: str | None = None,
    top: int | None = None,
    baseline: str | None = None,
    choose: list[str] | None = None,
    all_searches: bool = False,
    log_to_mlflow: bool = True,
    overwrite: bool = True,
) -> list[Path]:
    """Write the report folder; returns the files written. `overwrite=False` refuses a folder that already
    holds a report (the CLI's default, against a typo); a study rewrites its own results folder. `top`
    keeps the K best groups and the baseline, and `all_searches` pools every search, as for `compare`."""
    from search.reporting import figures  # matplotlib: only for a report, not for `compare`
    from search.tracking.client import experiment_runs, log_folder, metric_histories  # mlflow: only for a report

    check_report_folder(out, force=overwrite)  # before the store is read: a refused folder costs nothing
    uri = resolve_tracking_uri(tracking_uri)
    comparison, trials = load_comparison(uri, experiments, rows=rows, cols=cols, metric=metric, where=where, top=top,
                                         all_searches=all_searches, baseline=baseline, choose=choose)
    finished = trials[trials["status"] == "FINISHED"]
    if top:
        finished = in_table(finished, comparison)  # the curves show the groups the table shows
    curves = metric_histories(uri, finished["run_id"].tolist(), ("accuracy", "val_accuracy"))
    drawn = {
        "learning_curves": figures.learning_curves(curves, finished, comparison.keys[:2]),
        "metric_by_axis": figures.metric_by_axis(comparison),
        "metric_vs_cost": figures.metric_vs_cost(comparison),
    }
    images = {name: {fmt: figures.figure_bytes(figure, fmt) for fmt in ("png", "svg")} for name, figure in drawn.items()}
    runs = [experiment_runs(uri, name, ENSEMBLE_ROLE) for name in experiments]
    ensembles = ensembles_table(pd.concat(runs, ignore_index=True), dict(zip(trials["run_id"], trials["run_name"])))
    make_report_folder(out)
    with writing(out):
        written = write_tables(out, comparison, cols) + write_figures(out, images)
        written += write_ensembles(out, ensembles) if not ensembles.empty else []
        written += write_indexes(out, comparison, experiments, {name: formats["png"] for name, formats in images.items()}, cols, ensembles)
    if log_to_mlflow:
        for parent in latest_parents(trials):
            log_folder(uri, parent, out, "report")
    return written


def in_table(trials: pd.DataFrame, comparison: Comparison) -> pd.DataFrame:
    """The trials of the groups the comparison kept (missing key values match as in the grouping)."""
    if not comparison.keys:
        return trials
    kept = comparison.table[comparison.keys].drop_duplicates().assign(_kept=True)
    matched = trials[comparison.keys].merge(kept, on=comparison.keys, how="left")["_kept"].notna().to_numpy()
    return trials[matched]


def latest_parents(trials: pd.DataFrame) -> list[str]:
    """The most recent search (parent run) of each experiment in the report."""
    latest = trials.dropna(subset=["parent_id"]).sort_values("start_time").groupby("experiment")["parent_id"].last()
    return latest.tolist()
