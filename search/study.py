"""Studies: a folder with a question, its space file(s) and a `study.yaml`; one command runs every
space over every seed into one MLflow experiment and writes the report and a methods record into the
folder (`results/`, or `results-full/` for the full-scale variant).

A cell study adds `searches` (run first, into their own experiment, so the proxy trials stay out of
the comparison) and `transfers`: seed by seed, the best cell of a search retrained at the target's scale.
"""

from __future__ import annotations

import json
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd
from pydantic import Field

from search.provenance import library_versions
from search.space import Space, Strict
from search.spacefile import Problem, SpaceError, load_space

STUDY_FILE = "study.yaml"


class Transfer(Strict):
    """Retrain the best cell(s) of one of the study's searches at the target space's scale, seed by seed."""

    search: str = Field(description="a space file listed in `searches`")
    target: str = Field(description="a cells space file without genotype: N, F, data and training of the retraining")
    top: Annotated[int, Field(ge=1, le=100)] = 1


class Study(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
    spaces: list[str] = Field(min_length=1, description="space files run on the embedded data, relative to the study")
    searches: list[str] = Field(default_factory=list, description="cell searches run first, into the experiment `study-<name>-search`")
    transfers: list[Transfer] = Field(default_factory=list)
    full_spaces: list[str] = Field(default_factory=list, description="the full-scale variant (--full)")
    full_searches: list[str] = Field(default_factory=list)
    full_transfers: list[Transfer] = Field(default_factory=list)
    seeds: list[Annotated[int, Field(ge=1)]] = Field([1, 2, 3], min_length=1)
    rows: list[str] = Field(default_factory=list, description="report grouping (default: the axes that vary)")
    cols: list[str] = Field(default_factory=list)
    metric: str | None = None

    def experiment(self, full: bool) -> str:
        return f"study-{self.name}" + ("-full" if full else "")

    def search_experiment(self, full: bool) -> str:
        return self.experiment(full) + "-search"


@dataclass(frozen=True)
class StudyPlan:
    """Every space of the chosen variant, loaded and validated: searches, then spaces, then transfers."""

    searches: list[tuple[Path, Space]]
    spaces: list[tuple[Path, Space]]
    transfers: list[tuple[Transfer, Space, Path, Space]]  # (transfer, its search's space, target path, target)


def load_study(folder: Path, full: bool = False) -> tuple[Study, StudyPlan]:
    """The study and the spaces of the chosen variant, all validated before anything runs."""
    import yaml
    from pydantic import ValidationError

    path = Path(folder) / STUDY_FILE
    if not path.is_file():
        raise SpaceError(path, [Problem("", f"no {STUDY_FILE} in {folder}")])
    try:
        study = Study.model_validate(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, ValidationError) as error:
        raise SpaceError(path, [Problem("", str(error).replace("\n", " "))]) from None
    spaces, searches, transfers = (
        (study.full_spaces, study.full_searches, study.full_transfers) if full else (study.spaces, study.searches, study.transfers)
    )
    if not spaces:
        raise SpaceError(path, [Problem("full_spaces", "this study has no full-scale variant")])
    searched = {name: load_space(Path(folder) / name) for name in searches}
    for name, space in searched.items():
        if not space.searches_cells:
            raise SpaceError(Path(folder) / name, [Problem("model", "a study's `searches` are cell searches (family cells, no genotype)")])
    planned = []
    for transfer in transfers:
        if transfer.search not in searched:
            key = "full_transfers" if full else "transfers"
            raise SpaceError(path, [Problem(key, f"search {transfer.search!r} is not one of the study's searches ({', '.join(searched) or 'none'})")])
        target_path = Path(folder) / transfer.target
        planned.append((transfer, searched[transfer.search], target_path, load_space(target_path, transfer_target=True)))
    return study, StudyPlan(
        searches=[(Path(folder) / name, space) for name, space in searched.items()],
        spaces=[(Path(folder) / name, load_space(Path(folder) / name)) for name in spaces],
        transfers=planned,
    )


def seeded(space: Space, seed: int, experiment: str) -> Space:
    """The space as one repeat of the study: its seed, its own search name (so each repeat resumes on
    its own), the study's experiment."""
    return space.model_copy(
        update={
            "name": f"{space.name}-seed{seed}",
            "search": space.search.model_copy(update={"seed": seed}),
            "tracking": space.tracking.model_copy(update={"experiment": experiment}),
        }
    )


def unseeded(name: str) -> str:
    """The space's own name, without the seed `seeded` appended."""
    return re.sub(r"-seed\d+$", "", name)


def transfer_target(target: Space, search: Space, seed: int, experiment: str) -> Space:
    """The target of one seed's transfer, named after the search it takes its cells from."""
    named = target.model_copy(update={"name": f"{target.name}-{search.name}"})
    return seeded(named, seed, experiment)


def search_record(space_path: Path, seed: int, trials: pd.DataFrame) -> dict:
    """One search's line in the methods record (read back from its runs, so a resumed or already
    finished search is recorded as fully as a fresh one)."""
    first = trials.iloc[0] if len(trials) else pd.Series(dtype=object)
    seconds = (trials["end_time"].max() - trials["start_time"].min()) / 1000 if len(trials) else 0.0
    return {
        "space_file": str(space_path),
        "space_hash": first.get("tags.space_hash"),
        "seed": seed,
        "data_hash": first.get("params.data_hash"),
        "train_samples": first.get("params.train_samples"),
        "validation_samples": first.get("params.validation_samples"),
        "trials_finished": int((trials["status"] == "FINISHED").sum()) if len(trials) else 0,
        "trials_failed": int((trials["status"] == "FAILED").sum()) if len(trials) else 0,
        "train_seconds": _total(trials, "metrics.train_seconds"),
        "trial_seconds": _total(trials, "metrics.trial_seconds"),
        "wall_seconds": float(seconds),
    }


def _total(trials: pd.DataFrame, column: str) -> float:
    """A sum over the trials that logged `column` (a trial whose process died logs no time)."""
    return float(pd.to_numeric(trials[column], errors="coerce").sum()) if column in trials else 0.0


def write_record(folder: Path, study: Study, full: bool, searches: list[dict]) -> Path:
    """`record.json` and `methods.md`: enough to write a methods section from."""
    import os

    cost_hours = sum(s["trial_seconds"] for s in searches) / 3600
    wall_seconds = sum(s["wall_seconds"] for s in searches)
    record = {
        "study": study.name,
        "command": f"archsearch study {folder.parent}" + (" --full" if full else ""),
        "experiment": study.experiment(full),
        "seeds": study.seeds,
        "searches": searches,
        "search_cost_hours": cost_hours,
        "wall_seconds": wall_seconds,
        "hardware": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "versions": library_versions(),
        "date": time.strftime("%Y-%m-%d"),
    }
    (folder / "record.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    lines = [
        f"# Methods record: {study.name}" + (" (full scale)" if full else ""),
        "",
        f"- Command: `{record['command']}`; MLflow experiment `{record['experiment']}`",
        f"- Seeds: {', '.join(map(str, study.seeds))} (each seed fixes the data split, shuffling, initial weights)",
        f"- Hardware: {record['hardware']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()),
        f"- Wall time of the searches: {wall_seconds / 60:.1f} min; search cost (sum of trial wall times): "
        f"{cost_hours:.2f} h on this machine",
        "",
        "| space | seed | data hash | train / val images | trials (failed) | training s | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in searches:
        lines.append(
            f"| {Path(s['space_file']).name} | {s['seed']} | {s['data_hash']} | {s['train_samples']} / {s['validation_samples']} "
            f"| {s['trials_finished']} ({s['trials_failed']}) | {s['train_seconds']:.0f} | {s['wall_seconds']:.0f} |"
        )
    (folder / "methods.md").write_text("\n".join(lines) + "\n")
    return folder / "record.json"


def write_search_table(tracking_uri: str, experiment: str, out: Path) -> Path:
    """`searches.md` / `.csv`: each search strategy's best trial (mean ± std over seeds) and its cost,
    the search-level half of a cell study (the transfers' table is the other half)."""
    from search.tables import compare, render
    from search.tracking import experiment_runs

    parents = experiment_runs(tracking_uri, experiment, "search")
    if parents.empty:
        raise KeyError(f"no search runs in {experiment}")
    parents = parents[parents["status"] == "FINISHED"].drop_duplicates("params.space", keep="last")
    objective = parents["params.objective"].iloc[0]
    frame = pd.DataFrame(
        {
            "experiment": experiment,
            "run_id": parents["run_id"],
            "status": parents["status"],
            "search": parents["params.space"].map(unseeded),
            "strategy": parents["params.strategy"],
            f"best_{objective}": pd.to_numeric(parents[f"metrics.best_{objective}"]),
            "trials_finished": pd.to_numeric(parents["metrics.trials_finished"]),
            "search_hours": pd.to_numeric(parents["metrics.search_hours"]),
            "train_seconds": pd.to_numeric(parents["metrics.train_seconds_total"]),
        }
    )
    comparison = compare(frame, rows=["search", "strategy"], metric=f"best_{objective}")
    (out / "searches.md").write_text(
        f"Best proxy-search trial per strategy ({comparison.metric}, mean ± std over seeds); train_seconds and "
        "search_hours are each search's total.\n\n" + render(comparison, "markdown")
    )
    (out / "searches.csv").write_text(render(comparison, "csv"))
    return out / "searches.md"
