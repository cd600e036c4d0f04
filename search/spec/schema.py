"""The typed schema of a space file.

Every field name here is also the KerasTuner hyperparameter name, the MLflow param name and the report
column: one vocabulary from the YAML to the table. Fields typed `Axis[...]` take one value or a list of
choices; they are normalised to a list, so a one-element list means "fixed". The model's fields are its
family's (`search.spec.families`). No framework import here: `archsearch validate` must answer in well
under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from search.spec.families import FAMILIES
from search.spec.metrics import PROXIES
from search.spec.fields import NAME_PATTERN, Axis, Strict, enum_schema, printable, printable_lines

MAX_PATH_CHARS = 4096  # Linux's PATH_MAX
MAX_PATH_PART_BYTES = 255  # Linux's NAME_MAX: no file name on disk is longer
MAX_EXPERIMENT_CHARS = 250
MAX_DESCRIPTION_CHARS = 5000
MAX_REPEATS = 100  # replicates per trial; a replicate's seed is search seed x MAX_REPEATS + its index
MAX_SEED = 10_000_000  # so that every replicate seed stays below 2**31, the range every RNG takes

DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "npz", "folder"]


class Augmentation(Strict):
    flip: bool = False
    crop_padding: Annotated[int, Field(ge=0, le=64)] = 0
    noise: Annotated[float, Field(ge=0, le=10)] = 0.0


class Corruption(Strict):
    """A fixed, seeded distortion of every image, training, validation and test alike: a harder variant of easy data."""

    scale: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="draw each image at this fraction of input_size, at a random place on a blank canvas"
    )
    noise: Annotated[float, Field(ge=0, le=10)] = Field(
        0.0, description="standard deviation of Gaussian pixel noise, in standardised units"
    )


def _not_empty(value: object) -> object:
    if value == "":
        raise ValueError("empty; give the .npz file or image folder, relative to the space file")
    return value


def _check_path(path: Path) -> Path:
    """A path the file system could hold: what it cannot (a NUL byte, a name over NAME_MAX) would otherwise
    fail as a ValueError or OSError deep in the first look at the disk."""
    text = str(path)
    printable(text)
    if len(text) > MAX_PATH_CHARS:
        raise ValueError(f"{len(text):,} characters; a path is at most {MAX_PATH_CHARS:,}")
    longest = max(path.parts, key=lambda part: len(part.encode()), default="")
    if len(longest.encode()) > MAX_PATH_PART_BYTES:
        raise ValueError(f"a part of {len(longest.encode()):,} bytes; a file or folder name is at most {MAX_PATH_PART_BYTES}")
    return path


class Dataset(Strict):
    name: DatasetName = "digits"
    # A path arrives as text: strict mode would take only a Path object.
    path: Annotated[Path, Field(strict=False), BeforeValidator(_not_empty), AfterValidator(_check_path)] | None = Field(
        None,
        description="npz: the .npz file; folder: the image folder; mnist, fashion_mnist: the folder of their IDX files "
        "(optional: else Keras' cache, then Debian's dataset-fashion-mnist); relative to the space file",
    )
    input_size: Annotated[int, Field(ge=1, le=1024)] = 32
    resize: Literal["bilinear", "pad"] = Field(
        "bilinear", description="how images reach input_size: bilinear resizing, or zero padding around the centred "
        "image (Fashion-MNIST's 28x28 in a 32x32 frame, so that nets with five halvings see unscaled pixels)"
    )
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = Field(
        0, description="fixes the split (test, subset, validation) and the corruption; no model seed moves it"
    )
    test_split: Annotated[float, Field(ge=0, le=0.9)] = Field(
        0.2, description="fraction of the images held out for testing, drawn first (0: no test part); "
        "mnist, fashion_mnist, cifar10 and cifar100 use their own 10,000-image test part instead"
    )
    subset: Annotated[int, Field(ge=2, le=100_000_000)] | None = Field(
        None, description="use only the first this many images left after the test part (a smaller subset's images "
        "all lie in a larger one's training part)"
    )
    validation_split: Annotated[float, Field(gt=0, le=0.9)] = Field(
        0.2, description="fraction of the images used (after the test part, within the subset) that select epochs and winners"
    )
    augmentation: Augmentation = Augmentation()
    corruption: Corruption = Corruption()


Optimizer = Literal["sgd", "adam", "adamw", "rmsprop"]
Schedule = Literal["constant", "step", "cosine", "plateau"]


class EarlyStopping(Strict):
    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    patience: Annotated[int, Field(ge=1, le=1000)] = 5


class Convergence(Strict):
    """When a trial counts as trained to a plateau: its training loss, fitted by a line over the last
    `window` epochs, falls by at most `tolerance` x ln(classes) (the loss of a uniform guess) per epoch."""

    window: Annotated[int, Field(ge=2, le=1000)] = 5
    tolerance: Annotated[float, Field(gt=0, le=1)] = 0.01


class Training(Strict):
    optimizer: Axis(Optimizer, enum_schema(Optimizer.__args__)) = ["sgd"]
    learning_rate: Axis(Annotated[float, Field(gt=0, le=10)], {"type": "number", "exclusiveMinimum": 0}) = [0.05]
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    schedule: Schedule = "constant"
    warmup: Annotated[int, Field(ge=0, le=10000)] = Field(
        0, description="epochs over which the learning rate rises linearly from near 0 to its value (Goyal et al. 2017), "
        "the schedule's epochs counting from the start"
    )
    milestones: Annotated[list[Annotated[int, Field(ge=1, le=10000)]], Field(max_length=100)] = Field(
        default_factory=list, description="epochs at which the `step` schedule divides the learning rate by 10"
    )
    plateau_patience: Annotated[int, Field(ge=1, le=1000)] = Field(
        3, description="epochs without validation gain before the `plateau` schedule divides the rate by 10"
    )
    weight_decay: Axis(Annotated[float, Field(ge=0, le=1)], {"type": "number", "minimum": 0}) = [0.0]
    batch_size: Axis(Annotated[int, Field(ge=1, le=65536)], {"type": "integer", "minimum": 1}) = [64]
    epochs: Annotated[int, Field(ge=1, le=10000)] = 10
    early_stopping: EarlyStopping | None = None
    convergence: Convergence = Convergence()
    distribute: Literal["none", "mirrored"] = Field(
        "none", description="mirrored: each trial trains data-parallel on every visible GPU (tf.distribute.MirroredStrategy)"
    )
    save_models: Literal["best", "all", "none"] = Field(
        "best", description="trained models kept in MLflow (the selected epoch's weights of the best replicate): the "
        "best trial of the search (in a study, of each group), every trial, or none"
    )


Strategy = Literal["grid", "random", "bayesian", "hyperband", "evolution", "nsga2"]
Objective = Literal["val_accuracy", "val_loss", "accuracy", "loss"]
ParetoCost = Literal["params", "flops", "latency_ms", "latency_batch_ms"]  # costs a multi-objective search minimises


Proxy = Literal[PROXIES]


class Prescreen(Strict):
    """Train only the best-scoring fraction of what the strategy samples: it samples 1/keep candidates
    per trial, scores each untrained with a zero-cost proxy, and trains the best."""

    proxy: Proxy
    keep: Annotated[float, Field(gt=0, le=1)] = Field(0.25, description="the fraction trained: one in round(1/keep) sampled")

    @property
    def sampled(self) -> int:
        """Candidates scored per trained one."""
        return max(1, round(1 / self.keep))


class Search(Strict):
    @model_validator(mode="before")
    @classmethod
    def _objective_from_objectives(cls, data):
        """`objectives: [val_accuracy, params]` alone sets `objective` to val_accuracy (the checks compare them
        when both are given)."""
        if isinstance(data, dict) and "objective" not in data and isinstance(data.get("objectives"), list) and data["objectives"]:
            first = data["objectives"][0]
            if first in Objective.__args__:
                data = {**data, "objective": first}
        return data

    strategy: Strategy = "grid"
    objective: Objective = "val_accuracy"
    max_trials: Annotated[int, Field(ge=1, le=100000)] | None = Field(
        None, description="default: every candidate of the grid"
    )
    repeats: Annotated[int, Field(ge=1, le=MAX_REPEATS)] = Field(
        1, description="independent replicates of every trial, each with its own initialisation and data order "
        "(seed x 100 + replicate); KerasTuner's executions_per_trial"
    )
    # KerasTuner's oracles read a seed of 0 as "no seed" (a random one), so seeds start at 1.
    seed: Annotated[int, Field(ge=1, le=MAX_SEED)] = Field(
        1, description="the search's seed: the strategy's sampling and, through its replicates, every model's "
        "initialisation and data order (the split is dataset.seed's)"
    )
    hyperband_factor: Annotated[int, Field(ge=2, le=100)] = 3
    population_size: Annotated[int, Field(ge=2, le=10000)] = Field(
        20, description="evolution: the population (P); the first P trials are random"
    )
    sample_size: Annotated[int, Field(ge=1, le=10000)] = Field(
        5, description="evolution: candidates drawn from the population to pick each parent (S)"
    )
    objectives: Annotated[list[Objective | ParetoCost], Field(min_length=2, max_length=4)] | None = Field(
        None, description="several objectives at once (nsga2, random): the objective first, then costs to minimise, "
        "e.g. [val_accuracy, latency_ms]; `objective` is the first"
    )
    crossover: Annotated[float, Field(ge=0, le=1)] = Field(
        0.5, description="nsga2: the chance that a child mixes two parents (uniform crossover) before its mutation"
    )
    prescreen: Prescreen | None = Field(
        None, description="random, evolution: score round(1/keep) sampled candidates with a zero-cost proxy and train the "
        "best, e.g. {proxy: synflow, keep: 0.25}; every trial then logs proxy_score"
    )
    max_consecutive_failed_trials: Annotated[int, Field(ge=1, le=1000)] = 3
    max_params: Annotated[int, Field(ge=1, le=10**12)] | None = Field(
        None, description="candidates with more parameters fail without training"
    )


    def replicate_seeds(self) -> list[int]:
        """The seed of each replicate: seed x 100 + replicate index, so that no two searches' replicates
        share one (the pair (seed, replicate) is read off it)."""
        return [replicate_seed(self.seed, index) for index in range(self.repeats)]


def replicate_seed(seed: int, index: int) -> int:
    return seed * MAX_REPEATS + index


class Tracking(Strict):
    experiment: Annotated[str, Field(min_length=1, max_length=MAX_EXPERIMENT_CHARS), AfterValidator(printable)] | None = Field(
        None, description="MLflow experiment name; default: the space's name"
    )
    latency_calls: Annotated[int, Field(ge=0, le=10000)] = Field(
        10, description="timed inference calls of each trained model, at batch 1 and at the batch size, whose medians are "
        "logged as latency_ms and latency_batch_ms; 0: not measured"
    )


ModelFamily = Annotated[Union[tuple(FAMILIES.values())], Field(discriminator="family")]  # noqa: UP007 - built from the registry


class Space(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS), AfterValidator(printable_lines)] | None = Field(
        None, description="the question the search asks, in a sentence or two: the search's description in the MLflow UI"
    )
    dataset: Dataset = Dataset()
    model: ModelFamily
    training: Training = Training()
    search: Search = Search()
    tracking: Tracking = Tracking()

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or self.name

    def settings(self) -> dict[str, object]:
        """The fixed (non-axis) settings under their field names, as logged with every run."""
        data, training, search = self.dataset, self.training, self.search
        stop = training.early_stopping
        return {
            "space": self.name,
            "family": self.model.family,
            "dataset": data.name,
            "dataset_path": str(data.path or ""),
            "input_size": data.input_size,
            "resize": data.resize,
            "data_seed": data.seed,
            "test_split": data.test_split,
            "validation_split": data.validation_split,
            "subset": data.subset,
            "flip": data.augmentation.flip,
            "crop_padding": data.augmentation.crop_padding,
            "noise": data.augmentation.noise,
            "corruption_scale": data.corruption.scale,
            "corruption_noise": data.corruption.noise,
            **self.model.settings(),
            "momentum": training.momentum,
            "schedule": training.schedule,
            "warmup": training.warmup,
            "milestones": training.milestones,
            "plateau_patience": training.plateau_patience,
            "epochs": training.epochs,
            "early_stopping": f"{stop.monitor}/{stop.patience}" if stop else None,
            "convergence_window": training.convergence.window,
            "convergence_tolerance": training.convergence.tolerance,
            "distribute": training.distribute,
            "save_models": training.save_models,
            "strategy": search.strategy,
            "objective": search.objective,
            "max_trials": search.max_trials,
            "repeats": search.repeats,
            "seed": search.seed,
            "replicate_seeds": ",".join(map(str, search.replicate_seeds())),
            "hyperband_factor": search.hyperband_factor,
            "population_size": search.population_size,
            "sample_size": search.sample_size,
            "max_params": search.max_params,
            "prescreen": f"{search.prescreen.proxy}/{search.prescreen.keep:g}" if search.prescreen else None,
        }

    def axes(self) -> dict[str, list]:
        """Every searchable field, model axes first, in declaration order (the grid's order)."""
        model = self.model.axes()
        training = {k: getattr(self.training, k) for k in TRAINING_AXES}
        return model | training

    def varying_axes(self) -> dict[str, list]:
        return {k: v for k, v in self.axes().items() if len(v) > 1}

    def varying_names(self) -> list[str]:
        """What differs between trials: the varying axes, and a searched structure (`genotype`)."""
        return (self.model.structure_names() if self.model.searched else []) + list(self.varying_axes())

    def describe(self) -> str:
        """One line on what the search covers, for `validate` and the start of `run`."""
        axes = " x ".join(f"{k}({len(v)})" for k, v in self.varying_axes().items())
        model = self.model
        if model.searched:
            return f"{model.family}, {model.describe_structure()}" + (f" x [{axes}]" if axes else "")
        return f"{model.family}, {self.grid_size()} candidates [{axes or 'no varying axis'}]"

    def grid_size(self) -> int:
        """Candidates in the grid; a searched structure multiplies it by every structure it allows."""
        size = self.model.structure_count()
        for values in self.axes().values():
            size *= len(values)
        return size

    def candidate(self, index: int) -> dict:
        """The `index`-th combination of axis values in grid order (the last axis varies fastest)."""
        values = {}
        for name, choices in reversed(self.axes().items()):
            index, position = divmod(index, len(choices))
            values[name] = choices[position]
        return dict(reversed(values.items()))


def model_values(values: dict) -> dict:
    """The chosen values that the model builder takes (everything but the training axes)."""
    return {k: v for k, v in values.items() if k not in TRAINING_AXES}


TRAINING_AXES = ("optimizer", "learning_rate", "weight_decay", "batch_size")
