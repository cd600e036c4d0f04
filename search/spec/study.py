"""A study file (`study.yaml`): which spaces a study runs over which seeds, and how each seed's space is
named. Reading and validating it here, like a space file, means a study is refused before anything runs.

A cell study adds `searches` (run first, into their own experiment, so the proxy trials stay out of
the comparison) and `transfers`: seed by seed, the best cell of a search retrained at the target's scale.
A Pareto study compares the searches themselves (`fronts`): each one's validation front, judged on the test
set, paired by seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from search.errors import SpaceError
from search.spec.fields import NAME_PATTERN, Strict, printable
from search.spec.problems import Problem
from search.spec.reader import load_space
from search.spec.schema import MAX_SEED, Space
from search.spec.wording import validated
from search.spec.yaml_reader import read_yaml

STUDY_FILE = "study.yaml"
MAX_FILES = 100  # space files in one list of a study
MAX_SEEDS = 1_000
# A file name relative to the study folder, checked as text before the file system sees it.
FileName = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(printable)]


class Transfer(Strict):
    """Retrain the best cell(s) of one of the study's searches at the target space's scale, seed by seed."""

    search: FileName = Field(description="a space file listed in `searches`")
    target: FileName = Field(description="a cells space file without genotype: N, F, data and training of the retraining")
    top: Annotated[int, Field(ge=1, le=100)] = 1


class StudyEnsemble(Strict):
    """Average the `top` best kept models (by validation) of one of the study's spaces, seed by seed, and
    compare each ensemble with the single model validation picks, paired by seed."""

    space: FileName = Field(description="a space file listed in `spaces`, with training.save_models: all")
    top: Annotated[int, Field(ge=2, le=100)] = 3


Keys = list[Annotated[str, Field(max_length=100)]]
Text = Annotated[str, Field(max_length=2000), AfterValidator(printable)]


class StudyComparison(Strict):
    """A further table of a study's trials, for a question its main table does not ask (the training loss of
    the plain nets by depth, say): `compare`'s options, written to `results/comparisons.md` and `.json`."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    question: Text = Field(description="what the table answers, one sentence, shown above it")
    metric: Annotated[str, Field(max_length=100)] | None = None
    rows: Keys = Field(default_factory=list, max_length=100)
    where: Text | None = Field(None, description="a filter, as `compare --where`")
    baseline: Text | None = Field(None, description="the baseline group, as `compare --baseline`")
    choose: Keys = Field(default_factory=list, max_length=100)

    def options(self) -> dict:
        """Its `compare` options."""
        return {"rows": self.rows or None, "metric": self.metric, "where": self.where, "baseline": self.baseline, "choose": self.choose or None}


class Fronts(Strict):
    """Compare the study's searches by what each answers, its validation front (the trials no other trial of
    the search beats in validation accuracy and cost), judged on the test set: the hypervolume of the front's
    (test accuracy, cost) points from one reference for the whole study, paired by seed against `baseline`."""

    question: Text = Field(description="what the comparison answers, one sentence, shown above it")
    baseline: FileName = Field(description="the search the others are compared with, one of `searches`")
    reference_accuracy: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.1, description="the reference's accuracy (chance, say): a front point must beat it to count"
    )
    reference_factor: Annotated[float, Field(ge=1, le=100)] = Field(
        1.1, description="the reference's cost: this many times the costliest trial the first seed's searches share"
    )


class Study(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    spaces: list[FileName] = Field(
        default_factory=list, max_length=MAX_FILES, description="space files of the study, relative to it (none in a study of searches)"
    )
    searches: list[FileName] = Field(
        default_factory=list, max_length=MAX_FILES, description="cell searches run first, into the experiment `study-<name>-search`"
    )
    transfers: list[Transfer] = Field(default_factory=list, max_length=MAX_FILES)
    full_spaces: list[FileName] = Field(default_factory=list, max_length=MAX_FILES, description="the full-scale variant (--full)")
    full_searches: list[FileName] = Field(default_factory=list, max_length=MAX_FILES)
    full_transfers: list[Transfer] = Field(default_factory=list, max_length=MAX_FILES)
    ensembles: list[StudyEnsemble] = Field(default_factory=list, max_length=MAX_FILES)
    full_ensembles: list[StudyEnsemble] = Field(default_factory=list, max_length=MAX_FILES)
    # a seed becomes the space's search.seed
    seeds: list[Annotated[int, Field(ge=1, le=MAX_SEED)]] = Field([1, 2, 3], min_length=1, max_length=MAX_SEEDS)
    rows: Keys = Field(default_factory=list, max_length=100, description="report grouping (default: the axes that vary)")
    cols: Keys = Field(default_factory=list, max_length=100)
    choose: Keys = Field(
        default_factory=list, max_length=100, description="axes picked per group on validation before reporting (e.g. learning_rate)"
    )
    metric: Annotated[str, Field(max_length=100)] | None = None
    baseline: Text | None = Field(None, description="the main table's baseline group, as `compare --baseline`")
    protocol: FileName | None = Field(None, description="the study's protocol, relative to the study (e.g. PROTOCOL.md), linked from its results")
    comparisons: list[StudyComparison] = Field(default_factory=list, max_length=MAX_FILES)
    fronts: Fronts | None = Field(None, description="compare the searches' validation fronts on the test set (two objectives)")

    def table_options(self) -> dict:
        """The main table's `compare` options: one set for its report and its methods record alike."""
        return {"rows": self.rows or None, "cols": self.cols or None, "metric": self.metric, "choose": self.choose or None,
                "baseline": self.baseline}

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
    ensembles: list[tuple[StudyEnsemble, Space]]  # (ensemble, its space)


def load_study(folder: Path, full: bool = False) -> tuple[Study, StudyPlan]:
    """The study and the spaces of the chosen variant, all validated before anything runs."""
    path = Path(folder) / STUDY_FILE
    if not path.is_file():
        raise SpaceError(path, [Problem("", f"no {STUDY_FILE} in {folder}")])
    study = validated(Study, path, *read_yaml(path))  # read as safely as a space file
    spaces, searches, transfers, ensembles = (
        (study.full_spaces, study.full_searches, study.full_transfers, study.full_ensembles) if full
        else (study.spaces, study.searches, study.transfers, study.ensembles)
    )
    if full and not (spaces or searches):
        raise SpaceError(path, [Problem("full_spaces", "this study has no full-scale variant")])
    if not (spaces or searches):
        raise SpaceError(path, [Problem("spaces", "a study needs spaces, searches, or both")])
    if study.protocol is not None and not (Path(folder) / study.protocol).is_file():
        raise SpaceError(path, [Problem("protocol", f"no file {study.protocol!r} in {folder}")])
    twice = used_twice([comparison.name for comparison in study.comparisons])
    if twice:
        raise SpaceError(path, [Problem("comparisons", f"each comparison needs its own name; {twice} is used twice")])
    searched = {name: load_space(Path(folder) / name) for name in searches}
    for name, space in searched.items():
        if not space.model.searched:
            raise SpaceError(Path(folder) / name, [Problem("model", "a study's `searches` are cell searches (family cells, no genotype)")])
    twice = used_twice([space.name for space in searched.values()])
    if twice:
        raise SpaceError(path, [Problem("searches", f"each search needs its own `name` (its runs and state are kept under it); "
                                                    f"{twice} is used twice")])
    if study.fronts is not None:
        front_problems(path, study.fronts, searched)
    planned = []
    for transfer in transfers:
        if transfer.search not in searched:
            key = "full_transfers" if full else "transfers"
            raise SpaceError(path, [Problem(key, f"search {transfer.search!r} is not one of the study's searches ({', '.join(searched) or 'none'})")])
        target_path = Path(folder) / transfer.target
        planned.append((transfer, searched[transfer.search], target_path, load_space(target_path, transfer_target=True)))
    listed = {name: load_space(Path(folder) / name) for name in spaces}
    return study, StudyPlan(
        searches=[(Path(folder) / name, space) for name, space in searched.items()],
        spaces=[(Path(folder) / name, space) for name, space in listed.items()],
        transfers=planned,
        ensembles=[(ensemble, ensemble_space(path, ensemble, listed, "full_ensembles" if full else "ensembles")) for ensemble in ensembles],
    )


def ensemble_space(path: Path, ensemble: StudyEnsemble, listed: dict[str, Space], key: str) -> Space:
    """The space an ensemble averages the kept models of: one of the study's, keeping every trial's model."""
    if ensemble.space not in listed:
        raise SpaceError(path, [Problem(key, f"space {ensemble.space!r} is not one of the study's spaces ({', '.join(listed) or 'none'})")])
    space = listed[ensemble.space]
    if space.training.save_models != "all":
        raise SpaceError(Path(path).parent / ensemble.space, [Problem("training.save_models", f"an ensemble of the {ensemble.top} best "
                                                                      "kept models needs save_models: all (best keeps one per group)")])
    planned = space.grid_size() if space.search.strategy == "grid" else space.search.max_trials
    if planned is not None and planned < ensemble.top:
        raise SpaceError(path, [Problem(f"{key}.top", f"{ensemble.top} members, but {ensemble.space} trains {planned} trial(s) per seed")])
    return space


def used_twice(names: list[str]) -> str:
    """The names that occur more than once, sorted and comma-separated ('' where none does)."""
    return ", ".join(sorted({name for name in names if names.count(name) > 1}))


def front_problems(path: Path, fronts: Fronts, searched: dict[str, Space]) -> None:
    """A front comparison needs at least two searches of two objectives, the same ones, and a baseline among them."""
    if fronts.baseline not in searched:
        raise SpaceError(path, [Problem("fronts.baseline", f"{fronts.baseline!r} is not one of the study's searches ({', '.join(searched) or 'none'})")])
    if len(searched) < 2:
        raise SpaceError(path, [Problem("fronts", "a front comparison needs two searches or more in `searches`")])
    for name, space in searched.items():
        objectives = space.search.objectives or []
        if len(objectives) != 2 or objectives[0] != "val_accuracy":
            raise SpaceError(Path(path).parent / name, [Problem("search.objectives", "a study's `fronts` compares searches for "
                                                                "[val_accuracy, COST]; this search has " + (", ".join(objectives) or "one objective"))])
    costs = {space.search.objectives[1] for space in searched.values()}
    if len(costs) > 1:
        raise SpaceError(path, [Problem("fronts", f"the searches minimise different costs ({', '.join(sorted(costs))}); a front comparison needs one")])


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
