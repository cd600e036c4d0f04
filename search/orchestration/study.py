"""`archsearch study DIR`: every space of a study over every seed into one MLflow experiment, searches
and transfers included, then the report and the methods record into `DIR/results/` (or `results-full/`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from search.errors import TrackingError, UserError
from search.orchestration.report import write_report
from search.orchestration.run import SearchResult
from search.orchestration.transfer import Origin, best_cells, transferred_space
from search.reporting.records import search_record, write_record
from search.reporting.tables import compare, render
from search.spec.metrics import best_metric
from search.spec.schema import Space
from search.spec.study import STUDY_FILE, Study, StudyPlan, seeded, transfer_target, unseeded
from search.tracking.client import experiment_runs
from search.tracking.locations import resolve_tracking_uri
from search.tracking.provenance import library_versions, machine
from search.tracking.tags import SEARCH_ROLE

# Runs one search (with whatever display the caller shows): space, its file, a transfer's origin or None.
RunOne = Callable[[Space, Path, Origin | None], SearchResult]


def run_study(folder: Path, study: Study, plan: StudyPlan, full: bool, tracking_uri: str | None, run_one: RunOne) -> Path:
    """Run the study's searches, spaces and transfers seed by seed (each seed its own search, so an
    interrupted study resumes where it stopped), then write its results; returns the results folder."""
    experiment, search_experiment = study.experiment(full), study.search_experiment(full)
    records = []
    searches_then_spaces = [(p, s, search_experiment) for p, s in plan.searches] + [(p, s, experiment) for p, s in plan.spaces]
    for space_path, space, into in searches_then_spaces:
        for seed in study.seeds:
            result = run_one(seeded(space, seed, into), space_path, None)
            records.append(search_record(space_path, seed, result.trials))
    for transfer, search, target_path, target in plan.transfers:
        for seed in study.seeds:
            source = seeded(search, seed, search_experiment)
            try:
                origin = best_cells(resolve_tracking_uri(tracking_uri), search_experiment, top=transfer.top, space=source.name)
                space = transferred_space(transfer_target(target, search, seed, experiment), origin)
            except UserError as error:
                raise error.at(target_path) from None
            result = run_one(space, target_path, origin)
            records.append(search_record(target_path, seed, result.trials))
    out = folder / ("results-full" if full else "results")
    try:
        write_report(tracking_uri, [experiment], out, rows=study.rows or None, cols=study.cols or None, metric=study.metric)
    except UserError as error:
        raise error.at(f"{folder / STUDY_FILE}: the searches ran, but the report failed") from None
    write_record(out, study, full, records, versions=library_versions(), hardware=machine())
    if plan.searches:
        try:
            write_search_table(resolve_tracking_uri(tracking_uri), search_experiment, out)
        except UserError as error:
            raise error.at(f"{folder / STUDY_FILE}: the searches ran, but their table failed") from None
    return out


def write_search_table(tracking_uri: str, experiment: str, out: Path) -> Path:
    """`searches.md` / `.csv`: each search strategy's best trial (mean ± std over seeds) and its cost,
    the search-level half of a cell study (the transfers' table is the other half)."""
    parents = experiment_runs(tracking_uri, experiment, SEARCH_ROLE)
    if parents.empty:
        raise TrackingError(f"no search runs in experiment {experiment!r}")
    parents = parents[parents["status"] == "FINISHED"].drop_duplicates("params.space", keep="last")
    objective = parents["params.objective"].iloc[0]
    best = best_metric(objective)

    def numbers(column: str) -> pd.Series:  # a search whose every trial failed logged no best or cost
        return pd.to_numeric(parents[column]) if column in parents else pd.Series(float("nan"), index=parents.index)

    frame = pd.DataFrame(
        {
            "experiment": experiment,
            "run_id": parents["run_id"],
            "status": parents["status"],
            "search": parents["params.space"].map(unseeded),
            "strategy": parents["params.strategy"],
            best: numbers(f"metrics.{best}"),
            "trials_finished": numbers("metrics.trials_finished"),
            "search_hours": numbers("metrics.search_hours"),
            "train_seconds": numbers("metrics.train_seconds_total"),
        }
    )
    comparison = compare(frame, rows=["search", "strategy"], metric=best)
    (out / "searches.md").write_text(
        f"Best proxy-search trial per strategy ({comparison.metric}, mean ± std over seeds); train_seconds and "
        "search_hours are each search's total.\n\n" + render(comparison, "markdown")
    )
    (out / "searches.csv").write_text(render(comparison, "csv"))
    return out / "searches.md"
