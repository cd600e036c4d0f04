"""Rules that span several keys of a validated space (the data and its path, subset and split, search and
grid, input size and downsamplings, milestones and epochs), each reported at the key the user should change.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from search.spec.families import FAMILIES
from search.spec.metrics import PRESCREENING
from search.spec.problems import Problem
from search.spec.schema import Objective, ParetoCost, Space

MULTI_OBJECTIVE = ("nsga2", "random")  # the strategies that take several objectives

MAX_GRID = 10_000  # candidates a search may default to trying all of; a larger grid needs search.max_trials
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
# (images, height, width, channels, classes) of the embedded and named data sets: known without loading them
KNOWN_SHAPES = {
    "digits": (1797, 8, 8, 1, 10),
    "mnist": (60000, 28, 28, 1, 10),
    "fashion_mnist": (60000, 28, 28, 1, 10),
    "cifar10": (50000, 32, 32, 3, 10),
    "cifar100": (50000, 32, 32, 3, 100),
}
OFFICIAL_TEST_SETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")  # their own test part is the test set, not test_split's
# The training part's (images, labels) IDX files, each plain or `.gz`, that a dataset.path folder of
# mnist or fashion_mnist holds (as both are distributed)
IDX_TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
IDX_NAMES = ("mnist", "fashion_mnist")


def check_consistency(space: Space, transfer_target: bool = False) -> list[Problem]:
    """Rules that span several keys, each reported at the key the user should change."""
    if transfer_target and (unfit := transfer_target_problems(space)):
        return unfit
    problems = []
    data = space.dataset
    if data.name in ("npz", "folder") or (data.name in IDX_NAMES and data.path is not None):
        problems += _check_data_path(data.name, data.path)
    elif data.path is not None:
        problems.append(Problem("dataset.path", f"only used with dataset.name 'npz' or 'folder' (or 'mnist' and 'fashion_mnist', for "
                                f"a folder of their IDX files), not {data.name!r}"))
    known = KNOWN_SHAPES[data.name][0] if data.name in KNOWN_SHAPES and data.path is None else None  # files of one's own may hold any number
    if data.subset is not None and known is not None:
        held = 0 if data.name in OFFICIAL_TEST_SETS else round(known * data.test_split)
        if data.subset > known - held:
            after = f", {known - held} after the test_split of {held}" if held else ""
            problems.append(Problem("dataset.subset", f"{data.name} has {known} training images{after}; subset {data.subset} is larger"))
    problems += [] if transfer_target else _check_search(space)
    model = space.model
    for key, value, needed in model.input_needs():
        if data.input_size < needed:
            problems.append(
                Problem(
                    "dataset.input_size",
                    f"{data.input_size} is too small for {model.family} {key} {value}: its downsamplings "
                    f"need an input of at least {needed}x{needed}",
                )
            )
            break
    if data.resize == "pad":
        problems += _check_padding(data.name, data.input_size)
    training = space.training
    if training.warmup and training.schedule == "plateau":
        problems.append(Problem("training.warmup", "not with schedule 'plateau', which sets the rate itself; use 'step', 'cosine' or 'constant'"))
    if training.warmup >= training.epochs:
        problems.append(Problem("training.warmup", f"{training.warmup} epochs; must be fewer than training.epochs ({training.epochs})"))
    if training.milestones and training.schedule != "step":
        problems.append(Problem("training.milestones", "only used with schedule 'step'"))
    if training.milestones != sorted(set(training.milestones)) or any(m >= training.epochs for m in training.milestones):
        problems.append(Problem("training.milestones", f"must be increasing epochs below training.epochs ({training.epochs})"))
    return problems


def _check_padding(name: str, input_size: int) -> list[Problem]:
    if name == "folder":
        return [Problem("dataset.resize", "'pad' is for array data sets; a folder's images are resized as they are decoded")]
    side = KNOWN_SHAPES[name][1] if name in KNOWN_SHAPES else None
    if side is not None and input_size < side:
        return [Problem("dataset.resize", f"'pad' needs dataset.input_size of at least {name}'s {side}x{side}, not {input_size}; use 'bilinear' to shrink")]
    return []


def transfer_target_problems(space: Space) -> list[Problem]:
    """A transfer's target is a space of a searchable family that leaves its structure to the transfer."""
    model = space.model
    if not model.searchable:
        searchable = " or ".join(name for name, family in FAMILIES.items() if family.searchable)
        return [Problem("model.family", f"a transfer's target must be a {searchable} space, not {model.family!r}")]
    if not model.searched:
        return [Problem(", ".join(f"model.{name}" for name in model.structure_names()), "leave it out of a transfer's target: the transfer sets it from the search")]
    return []


def _check_search(space: Space) -> list[Problem]:
    search, problems = space.search, _check_objectives(space)
    if search.prescreen is not None and search.strategy not in PRESCREENING:
        problems.append(Problem("search.prescreen", f"only {' and '.join(PRESCREENING)} sample candidates a proxy can prescreen; "
                                f"not {search.strategy}"))
    if search.strategy in ("evolution", "nsga2") and search.max_trials is not None and search.max_trials <= search.population_size:
        problems.append(Problem("search.population_size", f"{search.population_size} is not below search.max_trials "
                                f"({search.max_trials}): the first population_size trials are random, so {search.strategy} would never start"))
    if search.strategy == "evolution" and search.sample_size > search.population_size:
        problems.append(Problem("search.sample_size", f"{search.sample_size} is more than search.population_size ({search.population_size})"))
    if space.model.searched:
        if search.strategy == "grid":
            problems.append(
                Problem("search.strategy", "grid cannot enumerate searched cells; use evolution, nsga2, random, bayesian or hyperband "
                        "(or fix the cells with model.genotype; a transfer's target gets them from `archsearch transfer`)")
            )
        elif search.max_trials is None and search.strategy != "hyperband":
            problems.append(Problem("search.max_trials", f"required when cells are searched (strategy {search.strategy})"))
    elif search.max_trials is None and search.strategy != "hyperband" and (size := space.grid_size()) > MAX_GRID:
        problems.append(Problem("search.max_trials", f"required for a grid of {size:,} candidates (more than {MAX_GRID:,}): "
                                "say how many to try"))
    return problems


def _check_data_path(name: str, path: Path | None) -> list[Problem]:
    if path is None:
        return [Problem("dataset.path", f"required when dataset.name is {name!r}")]
    kind = _kind(path)
    if kind in ("a symlink loop", "unreadable (permission denied)"):
        return [Problem("dataset.path", f"{path} is {kind}")]
    if name == "npz":
        return [] if kind == "file" else [Problem("dataset.path", f"no .npz file at {path}")]
    if name in IDX_NAMES:
        return _check_idx_folder(path, kind)
    if kind != "folder":
        return [Problem("dataset.path", f"no image folder at {path}")]
    try:
        classes = [entry.path for entry in os.scandir(path) if _kind(Path(entry.path)) == "folder"]
        has_images = len(classes) >= 2 and any(
            Path(entry.name).suffix.lower() in IMAGE_SUFFIXES for folder in classes for entry in os.scandir(folder)
        )
    except PermissionError:
        return [Problem("dataset.path", f"{path} cannot be listed: permission denied")]
    if not has_images:
        return [
            Problem(
                "dataset.path",
                f"{path} must hold one sub-folder per class (at least 2) with images ({', '.join(sorted(IMAGE_SUFFIXES))})",
            )
        ]
    return []


def _check_idx_folder(path: Path, kind: str) -> list[Problem]:
    """A folder holding the training part's IDX files, each plain or gzipped."""
    if kind != "folder":
        return [Problem("dataset.path", f"no folder at {path}; give the folder that holds {' and '.join(IDX_TRAIN_FILES)}")]
    kinds = [[_kind(path / f"{name}{suffix}") for suffix in ("", ".gz")] for name in IDX_TRAIN_FILES]
    unreadable = sorted({found for pair in kinds for found in pair if found not in ("file", "folder", "missing", "other")})
    if unreadable:
        return [Problem("dataset.path", f"{path}: a training file there is {unreadable[0]}")]
    missing = [name for name, pair in zip(IDX_TRAIN_FILES, kinds) if "file" not in pair]
    if missing:
        return [
            Problem(
                "dataset.path",
                f"{path} lacks {' and '.join(missing)} (or .gz); it must hold {' and '.join(IDX_TRAIN_FILES)}, each "
                "optionally gzipped, as MNIST and Fashion-MNIST are distributed",
            )
        ]
    return []


def _kind(path: Path) -> str:
    """What is at `path`, from one stat: "file", "folder", "missing", "a symlink loop", "unreadable ...", "other"."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except PermissionError:
        return "unreadable (permission denied)"
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        return "a symlink loop"
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def _check_objectives(space: Space) -> list[Problem]:
    """Several objectives: the trained-for one first (the search's `objective`), then costs, measured ones
    measured; only NSGA-II and random search take them, and NSGA-II needs them."""
    search, listed = space.search, space.search.objectives
    if listed is None:
        return [Problem("search.objectives", "nsga2 needs at least two, e.g. [val_accuracy, params]")] if search.strategy == "nsga2" else []
    objectives, costs = Objective.__args__, ParetoCost.__args__
    if listed[0] not in objectives:
        return [Problem("search.objectives", f"the first is what trials are trained and selected for, one of {', '.join(objectives)}; "
                        f"{listed[0]!r} is not")]
    problems = []
    if wrong := [name for name in listed[1:] if name not in costs]:
        problems.append(Problem("search.objectives", f"after the first, costs to minimise ({', '.join(costs)}); not {', '.join(map(repr, wrong))}"))
    if len(set(listed)) < len(listed):
        problems.append(Problem("search.objectives", "each objective once"))
    if search.objective != listed[0]:
        problems.append(Problem("search.objective", f"{search.objective!r}, but search.objectives starts with {listed[0]!r}: give one of them"))
    if search.strategy not in MULTI_OBJECTIVE:
        problems.append(Problem("search.objectives", f"{search.strategy} optimises one objective; several need {' or '.join(MULTI_OBJECTIVE)}"))
    if any(name.startswith("latency") for name in listed) and not space.tracking.latency_calls:
        problems.append(Problem("tracking.latency_calls", "0, but search.objectives needs the latency measured"))
    return problems
