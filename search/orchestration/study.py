"""`archsearch study DIR`: every space of a study over every seed into one MLflow experiment, searches
and transfers included, then the report and the methods record into `DIR/results/` (or `results-full/`)."""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from search.data import LEAK_REMEDY, leak
from search.errors import DataError, TrackingError, UserError
from search.files import write_atomic
from search.orchestration.ensemble import seed_ensembles
from search.orchestration.fronts import write_fronts
from search.orchestration.report import load_comparison, write_report
from search.orchestration.run import SearchResult
from search.orchestration.transfer import Origin, best_cells, transferred_space
from search.reporting.ensembles import ensemble_gain
from search.reporting.records import search_record, write_record
from search.reporting.statistics import ALPHA, LEVEL
from search.reporting.tables import compare, latest_searches, render, trials_frame
from search.spec.metrics import best_metric
from search.spec.schema import Space
from search.spec.study import STUDY_FILE, Study, StudyComparison, StudyPlan, seeded, transfer_target, unseeded
from search.tracking.client import experiment_runs
from search.tracking.locations import resolve_tracking_uri
from search.tracking.provenance import file_hash, first_commit, library_versions, machine
from search.tracking.tags import PARENT_TAG, SEARCH_ROLE, TRIAL_ROLE, VARYING_TAG

# Runs one search (with whatever display the caller shows): space, its file, a transfer's origin or None.
RunOne = Callable[[Space, Path, Origin | None], SearchResult]


def run_study(folder: Path, study: Study, plan: StudyPlan, full: bool, tracking_uri: str | None, run_one: RunOne,
              say: Callable[[str], None] = lambda text: None) -> Path:
    """Run the study's searches, spaces and transfers seed by seed (each seed its own search, so an
    interrupted study resumes where it stopped), then write its results; returns the results folder.
    `say` hears of a long step with no search display (re-timing a front comparison's trials).
    A cell search whose images overlap what a baseline or transfer is judged on is refused first."""
    check_splits(plan)
    experiment, search_experiment = study.experiment(full), study.search_experiment(full)
    records = []
    for seed, space_path, space in search_order(plan, study.seeds):
        result = run_one(seeded(space, seed, search_experiment), space_path, None)
        records.append(search_record(space_path, seed, result.trials))
    for space_path, space in plan.spaces:
        for seed in study.seeds:
            result = run_one(seeded(space, seed, experiment), space_path, None)
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
    uri = resolve_tracking_uri(tracking_uri)
    judged = bool(plan.spaces or plan.transfers)  # a study of searches alone has no main table
    gains, failed = [], None
    for ensemble, space in plan.ensembles:  # before the report, which shows them; a failure is raised after it
        names = {seed: seeded(space, seed, experiment).name for seed in study.seeds}
        try:
            gains.append((ensemble, space, seed_ensembles(uri, experiment, names, ensemble.top)))
        except UserError as error:
            failed = failed or error.at(f"{folder / STUDY_FILE}: the searches ran and the report is written, but ensembles ({ensemble.space}) failed")
    try:
        if judged:
            write_report(tracking_uri, [experiment], out, **study.table_options())
            write_comparisons(tracking_uri, experiment, study.comparisons, out)
            write_ensemble_gains(gains, out)
        else:
            out.mkdir(parents=True, exist_ok=True)
    except UserError as error:
        raise error.at(f"{folder / STUDY_FILE}: the searches ran, but the report failed") from None
    costs = [cost for name in (search_experiment, experiment) for cost in run_costs(uri, name)]
    write_record(out, study, full, records, versions=library_versions(), hardware=machine(), costs=costs,
                 replicates=replicate_rows(uri, experiment) if judged else [],
                 statistics=statistics_used(uri, experiment, study) if judged else None,
                 protocol=protocol_record(folder, study))
    try:
        if plan.searches:
            write_search_table(uri, search_experiment, out)
        if study.fronts is not None:
            names = dict.fromkeys(study.full_searches if full else study.searches)  # as listed: the baseline is named so
            write_fronts(uri, search_experiment, study, dict(zip(names, (space for _, space in plan.searches))), out, say)
    except UserError as error:
        raise error.at(f"{folder / STUDY_FILE}: the searches ran, but their comparison failed") from None
    if failed is not None:
        raise failed
    return out


def search_order(plan: StudyPlan, seeds: list[int]) -> list[tuple[int, Path, Space]]:
    """The searches seed by seed, each seed's order rotated by one from the last (A, B; B, A; ...), so that a
    drift of the machine's speed over the study favours no search in a comparison paired by seed."""
    order = []
    for index, seed in enumerate(seeds):
        shift = index % len(plan.searches) if plan.searches else 0
        order += [(seed, path, space) for path, space in plan.searches[shift:] + plan.searches[:shift]]
    return order


def write_comparisons(tracking_uri: str | None, experiment: str, comparisons: list[StudyComparison], out: Path) -> Path | None:
    """`comparisons.md` and `.json`: the study's further tables, each under its question with the `compare`
    command that gives it again. Written whole or not at all, after every table was made."""
    if not comparisons:
        return None
    sections, tables = [f"# Further comparisons ({experiment})", ""], {}
    for item in comparisons:
        try:
            comparison, _ = load_comparison(tracking_uri, [experiment], **item.options())
        except UserError as error:
            raise error.at(f"comparison {item.name!r}") from None
        options = [("--rows", ",".join(item.rows)), ("--metric", item.metric), ("--where", item.where),
                   ("--baseline", item.baseline), ("--choose", ",".join(item.choose))]
        command = " ".join([f"archsearch compare {experiment}", *(f"{flag} {shlex.quote(value)}" for flag, value in options if value)])
        sections += [f"## {item.name}", "", item.question, "", f"`{command}`", "", render(comparison, "markdown").rstrip(), ""]
        tables[item.name] = {"question": item.question, "command": command, **json.loads(render(comparison, "json"))}
    write_atomic(out / "comparisons.json", json.dumps(tables, indent=2) + "\n")
    write_atomic(out / "comparisons.md", "\n".join(sections))
    return out / "comparisons.md"


def write_ensemble_gains(gains: list, out: Path) -> Path | None:
    """`ensemble_gain.md` and `.json`: each listed ensemble against the single model, paired by seed."""
    if not gains:
        return None
    sections, records = ["# Ensembles against the single model", ""], []
    for ensemble, space, rows in gains:
        text, record = ensemble_gain(rows, space.name, ensemble.top)
        sections.append(text)
        records.append(record)
    write_atomic(out / "ensemble_gain.json", json.dumps(records, indent=2, default=float) + "\n")
    write_atomic(out / "ensemble_gain.md", "\n".join(sections))
    return out / "ensemble_gain.md"


def protocol_record(folder: Path, study: Study) -> dict | None:
    """The protocol's file, hash and first commit: the record shows it was fixed before the runs."""
    if study.protocol is None:
        return None
    path = Path(folder) / study.protocol
    return {"file": study.protocol, "sha256": file_hash(path), "first_commit": first_commit(path)}


def check_splits(plan: StudyPlan) -> None:
    """Each cell search must see only training images of every space the study judges beside it
    (`search.data.leak`), or its cells would be scored on what they were chosen on."""
    judged = [*plan.spaces, *((path, target) for _, _, path, target in plan.transfers)]
    for search_path, search in plan.searches:
        for path, space in judged:
            problem = leak(search.dataset, space.dataset)
            if problem:
                raise DataError(f"dataset.subset: {problem} in {path.name}; {LEAK_REMEDY}").at(search_path)


def run_costs(tracking_uri: str, experiment: str) -> list[dict]:
    """Every search run in `experiment`, superseded, failed and pilot runs included, with what its
    trials cost: the study's cost is all it ran, not only what its tables show."""
    try:
        parents = experiment_runs(tracking_uri, experiment, SEARCH_ROLE)
        trials = experiment_runs(tracking_uri, experiment, TRIAL_ROLE)
    except TrackingError:  # the experiment was never made (a study without cell searches)
        return []
    if len(trials):
        logged = trials["metrics.trial_seconds"] if "metrics.trial_seconds" in trials else pd.Series(math.nan, index=trials.index)
        by_parent = pd.to_numeric(logged, errors="coerce").groupby(trials[f"tags.{PARENT_TAG}"]).agg(["sum", "size"])
    else:
        by_parent = pd.DataFrame(columns=["sum", "size"])
    rows = []
    for _, parent in parents.iterrows():
        spent = by_parent.loc[parent["run_id"]] if parent["run_id"] in by_parent.index else {"sum": 0.0, "size": 0}
        rows.append({
            "experiment": experiment, "run_id": parent["run_id"], "space": parent.get("params.space"), "seed": parent.get("params.seed"),
            "status": parent["status"], "trials": int(spent["size"]), "trial_seconds": float(spent["sum"]),
            "git_commit": parent.get("tags.git_commit"), "started": _date(parent.get("start_time")),
        })
    return rows


def replicate_rows(tracking_uri: str, experiment: str) -> list[dict]:
    """One row per replicate of every finished trial of the study: its space, search, search seed,
    replicate seed, axis values and per-replicate metrics, and whether its search is the latest of its
    space and seed (`latest`: the ones the tables use), for a reader to recompute every statistic."""
    trials = experiment_runs(tracking_uri, experiment, TRIAL_ROLE)
    latest = set(latest_searches(trials_frame(trials).assign(parent_id=trials[f"tags.{PARENT_TAG}"], start_time=trials["start_time"]))["run_id"])
    trials = trials[trials["status"] == "FINISHED"]
    rows = []
    for _, trial in trials.iterrows():
        varying = [a for a in _text(trial.get(f"tags.{VARYING_TAG}")).split(",") if a]
        seeds = (_text(trial.get("params.replicate_seeds")) or _text(trial.get("params.seed"))).split(",")
        for index, seed in enumerate(seeds):
            row = {"space": trial.get("params.space"), "parent_id": trial.get(f"tags.{PARENT_TAG}"), "run_id": trial["run_id"],
                   "latest": trial["run_id"] in latest, "seed": trial.get("params.seed"), "replicate_seed": seed}
            row |= {axis: trial.get(f"params.{axis}") for axis in varying}
            row |= {name: trial.get(f"metrics.{name}/replicate_{index}") for name in REPLICATE_METRICS}
            row |= {f"{part}_hash": trial.get(f"params.{part}_hash") for part in ("train", "validation", "test")}
            rows.append(row)
    return rows


REPLICATE_METRICS = ("best_val_accuracy", "best_val_loss", "test_accuracy", "test_loss", "selected_epoch", "loss_slope", "converged",
                     "loss", "accuracy")


def statistics_used(tracking_uri: str, experiment: str, study: Study) -> dict:
    """What the study's table computed, in words a methods section can quote."""
    comparison = load_comparison(tracking_uri, [experiment], **study.table_options())[0]
    tests = sorted(set(comparison.table["test"].dropna()))
    return {
        "metric": comparison.metric,
        "baseline": comparison.baseline,
        "interval": f"{LEVEL:.0%} Student t interval of each group's mean over its replicates",
        "difference": "paired t-test over shared replicate seeds (scipy.stats.ttest_rel), else Welch's t-test "
        "(ttest_ind, equal_var=False), with its 95% interval",
        "tests_used": tests,
        "correction": f"Holm over the {int(comparison.table['p'].notna().sum())} comparisons with the baseline",
        "decision": f"resolved where the Holm-corrected p < {ALPHA}; replicates needed: the fewest per arm with 80% "
        f"power in a two-sided t-test at {ALPHA} / m, m the comparisons with the baseline (noncentral t)",
        "convergence": "training loss slope over the last epochs (training.convergence); a verdict resting on a "
        "replicate above the tolerance says 'not converged'",
        "chosen_on_validation": ", ".join(comparison.chosen) or "nothing",
    }


def _text(value) -> str:
    """A param or tag as text; a run that lacks it (NaN in the frame) as ''."""
    return "" if value is None or pd.isna(value) else str(value)


def _date(milliseconds) -> str | None:
    return None if pd.isna(milliseconds) else time.strftime("%Y-%m-%d %H:%M", time.gmtime(milliseconds / 1000))


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
