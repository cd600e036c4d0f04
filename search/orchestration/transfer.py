"""Transfer: the best cells of a finished cell search, retrained at a larger scale from a second space.

NASNet's recipe: search on a cheap proxy (small data, few cells, few filters, few epochs), then stack
the best cells deeper and wider (N, F) and train them on the target data. The target space file says
how; this module picks the cells, fixes them as the target's `genotype` axis, and records where they
came from, so every transferred run links back to the search run that found it and carries its cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from search.data import LEAK_REMEDY, leak, planned_split
from search.errors import TransferError
from search.spec.metrics import best_metric, minimised
from search.spec.consistency import transfer_target_problems
from search.spec.schema import Dataset, Space
from search.spec.study import unseeded
from search.tracking.client import experiment_runs
from search.tracking.tags import (
    NOTE_TAG,
    PARENT_TAG,
    SEARCH_ROLE,
    SOURCE_EXPERIMENT_TAG,
    SOURCE_SEARCH_TAG,
    SOURCE_TRIAL_TAG,
    TRIAL_ROLE,
)


@dataclass(frozen=True)
class Origin:
    """Cells picked from one search: where it ran, what it cost, and the trial run behind each genotype."""

    experiment: str
    experiment_id: str
    parent_id: str
    space: str
    strategy: str
    search_hours: float
    trials: int
    runs: dict[str, str]  # genotype -> the trial run that found it, best first
    split: dict[str, str]  # the search's data and split settings and its split's hashes, as its parent run logged them

    def parent_tags(self) -> dict[str, str]:
        return {
            SOURCE_SEARCH_TAG: self.parent_id,
            SOURCE_EXPERIMENT_TAG: self.experiment,
            NOTE_TAG: f"Cells transferred from search [{self.space}](#/experiments/{self.experiment_id}/runs/{self.parent_id}) "
            f"({self.strategy}, {self.trials} trials, {self.search_hours:.3f} device-hours).",
        }

    def trial_tags(self, values: dict) -> dict[str, str]:
        run = self.runs.get(values.get("genotype"))
        return {SOURCE_TRIAL_TAG: run, SOURCE_SEARCH_TAG: self.parent_id} if run else {}

    def trial_params(self) -> dict[str, object]:
        return {"cells_from": unseeded(self.space), "cells_strategy": self.strategy}

    def trial_metrics(self) -> dict[str, float]:
        return {"search_hours": self.search_hours, "search_trials": float(self.trials)}


def best_cells(tracking_uri: str, experiment: str, *, top: int = 1, space: str | None = None, parent_id: str | None = None) -> Origin:
    """The `top` best distinct genotypes of the cell search that finished last in `experiment` (of the
    space named `space`, or the search run `parent_id`), ranked by the search's own objective."""
    parents = experiment_runs(tracking_uri, experiment, SEARCH_ROLE)
    if parents.empty:
        raise TransferError(f"experiment {experiment!r} has no search runs; run the cell search first")
    searched_cells = (parents["status"] == "FINISHED") & parents.get("params.blocks", pd.Series(index=parents.index)).notna()
    finished = parents[searched_cells].sort_values("end_time", kind="stable")
    if parent_id is not None:
        finished = finished[finished["run_id"] == parent_id]
    elif space is not None:
        finished = finished[finished.get("params.space") == space]
    what = f"search run {parent_id}" if parent_id else (f"space {space!r}" if space else "any space")
    if finished.empty:
        raise TransferError(f"no finished cell search of {what} in experiment {experiment!r}; run the cell search first")
    parent = finished.iloc[-1]
    trials = experiment_runs(tracking_uri, experiment, TRIAL_ROLE)
    trials = trials[trials[f"tags.{PARENT_TAG}"] == parent["run_id"]]
    objective = parent["params.objective"]
    ranked = _ranked(trials, f"metrics.{best_metric(objective)}", maximise=not minimised(objective))
    if ranked.empty:
        raise TransferError(f"search run {parent['run_id']} has no finished trial with a genotype")
    picked = ranked.drop_duplicates("params.genotype").head(top)
    return Origin(
        experiment=experiment,
        experiment_id=str(trials["experiment_id"].iloc[0]) if "experiment_id" in trials else "",
        parent_id=parent["run_id"],
        space=parent["params.space"],
        strategy=parent["params.strategy"],
        search_hours=float(parent["metrics.search_hours"]),  # logged by the search when it finished
        trials=len(trials),
        runs=dict(zip(picked["params.genotype"], picked["run_id"])),
        split={key: parent[f"params.{key}"] for key in SPLIT_PARAMS if isinstance(parent.get(f"params.{key}"), str)},
    )


# What a search's split is rebuilt from, and the hashes the rebuilt split must match
SPLIT_PARAMS = ("dataset", "dataset_path", "data_seed", "test_split", "subset", "validation_split", "train_hash", "validation_hash")


def check_no_leak(origin: Origin, target: Space) -> None:
    """Refuse a target whose validation or test images the search trained or selected on. The search's
    split is rebuilt from its parent run's params and must hash as the search logged it (else its data
    changed since, and the check would be about other images)."""
    split = origin.split
    missing = [key for key in SPLIT_PARAMS if key not in split and key != "dataset_path"]
    if missing:
        raise TransferError(f"search run {origin.parent_id} logged no {', '.join(missing)}: it ran before splits were recorded, "
                            "so a leak into the target's validation and test images cannot be ruled out; run the cell search again")
    searched = Dataset(
        name=split["dataset"], path=split.get("dataset_path") or None, seed=int(split["data_seed"]), test_split=float(split["test_split"]),
        subset=None if split["subset"] == "None" else int(split["subset"]), validation_split=float(split["validation_split"]),
    )
    rebuilt = planned_split(searched).hashes()
    for part in ("train_hash", "validation_hash"):
        if rebuilt[part] != split[part]:
            raise TransferError(f"search run {origin.parent_id}: its {part.removesuffix('_hash')} images hash to {rebuilt[part]} "
                                f"now, not {split[part]} as when it ran; its data changed, so what it saw cannot be checked")
    problem = leak(searched, target.dataset)
    if problem:
        raise TransferError(f"dataset.subset: {problem} (search {origin.space}); the target must judge on images its search never "
                            f"saw: {LEAK_REMEDY}")


def _ranked(trials: pd.DataFrame, metric: str, maximise: bool) -> pd.DataFrame:
    if metric not in trials or "params.genotype" not in trials:
        return trials.iloc[0:0]
    done = trials[(trials["status"] == "FINISHED") & trials[metric].notna() & trials["params.genotype"].notna()]
    return done.sort_values(metric, ascending=not maximise, kind="stable")


def transferred_space(target: Space, origin: Origin) -> Space:
    """The target space with the picked cells as its `genotype` axis, once it is shown to judge them on
    images their search never saw."""
    unfit = transfer_target_problems(target)
    if unfit:
        raise TransferError(f"{unfit[0].key}: {unfit[0].message}")
    check_no_leak(origin, target)
    spec = target.model_dump(mode="json")
    spec["model"]["genotype"] = list(origin.runs)
    return Space.model_validate(spec)
