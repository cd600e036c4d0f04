"""The typed schema of a space file.

Every field name here is also the KerasTuner hyperparameter name, the MLflow param name and the report
column: one vocabulary from the YAML to the table. Fields typed `Axis[...]` take one value or a list of
choices; they are normalised to a list, so a one-element list means "fixed". No framework import here:
`archsearch validate` must answer in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from search.architectures import resnet_layout
from search.cells import CELL_KINDS, OPS, parse_genotype

T = TypeVar("T")


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _unique(values: list) -> list:
    if len(set(map(repr, values))) != len(values):
        raise ValueError(f"choices must be distinct, got {values}")
    return values


def _axis_schema(handler_schema: dict) -> dict:
    return {"anyOf": [handler_schema, {"type": "array", "items": handler_schema, "minItems": 1}]}


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def Axis(item_type: Any, item_schema: dict) -> Any:  # noqa: N802 - reads like a type in field declarations
    """One value or a non-empty list of distinct values, always stored as a list."""
    return Annotated[
        list[item_type],
        BeforeValidator(_as_list),
        Field(min_length=1),
        AfterValidator(_unique),
        WithJsonSchema(_axis_schema(item_schema)),
    ]


BN = Literal["none", "post", "pre"]
ConvKind = Literal["dense", "separable"]
Head = Literal["gap", "fc"]
Kernel = Literal[1, 3, 5, 7]
VGGConfig = Literal["A", "A-LRN", "B", "C", "D", "E"]
_PositiveFraction = Annotated[float, Field(gt=0, le=8)]
_Dropout = Annotated[float, Field(ge=0, lt=1)]
_BNMomentum = Annotated[float, Field(gt=0, lt=1)]


def _enum_schema(values: tuple) -> dict:
    return {"enum": list(values)}


class ModelAxes(Strict):
    """Axes every family shares. Defaults are the common Keras practice, not the paper."""

    bn: Axis(BN, _enum_schema(BN.__args__)) = ["post"]
    conv: Axis(ConvKind, _enum_schema(ConvKind.__args__)) = ["dense"]
    kernel: Axis(Kernel, _enum_schema(Kernel.__args__)) = [3]
    head: Axis(Head, _enum_schema(Head.__args__)) = ["gap"]
    width: Axis(_PositiveFraction, {"type": "number", "exclusiveMinimum": 0, "maximum": 8}) = [1.0]
    se: Axis(bool, {"type": "boolean"}) = [False]
    dropout: Axis(_Dropout, {"type": "number", "minimum": 0, "exclusiveMaximum": 1}) = [0.0]
    fc_units: Axis(Annotated[int, Field(ge=1, le=65536)], {"type": "integer", "minimum": 1}) = [4096]
    # Keras' default 0.99 leaves the moving statistics unsettled after the few hundred steps of a
    # small-data run, and validation accuracy then sits at chance; 0.9 settles within ~50 steps.
    bn_momentum: Axis(_BNMomentum, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}) = [0.9]


    def axes(self) -> dict[str, list]:
        return {k: v for k, v in self if k != "family"}

    def settings(self) -> dict[str, object]:
        return {}


class VGGModel(ModelAxes):
    family: Literal["vgg"]
    config: Axis(VGGConfig, _enum_schema(VGGConfig.__args__)) = ["D"]
    residual: Axis(bool, {"type": "boolean"}) = [False]


def _check_resnet_depth(depth: int) -> int:
    resnet_layout(depth)  # raises ValueError with the allowed depths
    return depth


ResNetDepth = Annotated[int, AfterValidator(_check_resnet_depth)]


class ResNetModel(ModelAxes):
    family: Literal["resnet"]
    depth: Axis(ResNetDepth, {"type": "integer", "minimum": 8}) = [20]
    residual: Axis(bool, {"type": "boolean"}) = [True]


def _check_genotype(text: str) -> str:
    return str(parse_genotype(text))  # raises GenotypeError (a ValueError) naming the cell and block


CellOp = Literal[OPS]
Genotype = Annotated[str, AfterValidator(_check_genotype)]


class CellsModel(Strict):
    """NASNet-style cells. Without `genotype` the cells themselves are searched: every block's two inputs
    and two ops are hyperparameters; with it, the listed cells are trained (transfer, hand-designed cells)."""

    family: Literal["cells"]
    genotype: Axis(Genotype, {"type": "string"}) | None = Field(
        None, description="fixed cells 'normal: op(state)+op(state), ...; reduce: ...'; default: search them"
    )
    blocks: Annotated[int, Field(ge=1, le=10)] = Field(5, description="blocks per searched cell (B)")
    ops: Annotated[list[CellOp], Field(min_length=1), AfterValidator(_unique)] = Field(
        list(OPS), description="the ops a searched block may apply"
    )
    stages: Annotated[int, Field(ge=1, le=6)] = Field(3, description="stages of normal cells, a reduction cell between two")
    cells_per_stage: Axis(Annotated[int, Field(ge=1, le=50)], {"type": "integer", "minimum": 1}) = [2]
    filters: Axis(Annotated[int, Field(ge=1, le=4096)], {"type": "integer", "minimum": 1}) = [16]
    dropout: Axis(_Dropout, {"type": "number", "minimum": 0, "exclusiveMaximum": 1}) = [0.0]
    bn_momentum: Axis(_BNMomentum, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}) = [0.9]

    @property
    def searched(self) -> bool:
        return self.genotype is None

    def axes(self) -> dict[str, list]:
        fixed = {} if self.searched else {"genotype": self.genotype}
        return fixed | {k: getattr(self, k) for k in ("cells_per_stage", "filters", "dropout", "bn_momentum")}

    def settings(self) -> dict[str, object]:
        return {"blocks": self.blocks, "ops": ",".join(self.ops), "stages": self.stages} if self.searched else {"stages": self.stages}

    def cell_count(self) -> int:
        """How many distinct genotypes the searched cells allow (a grid could never enumerate them)."""
        count = 1
        for _kind in CELL_KINDS:
            for b in range(self.blocks):
                count *= ((b + 2) * len(self.ops)) ** 2
        return count if self.searched else 1


DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "npz", "folder"]


class Augmentation(Strict):
    flip: bool = False
    crop_padding: Annotated[int, Field(ge=0, le=64)] = 0
    noise: Annotated[float, Field(ge=0, le=10)] = 0.0


class Corruption(Strict):
    """A fixed, seeded distortion of every image, training and validation alike: a harder variant of easy data."""

    scale: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="draw each image at this fraction of input_size, at a random place on a blank canvas"
    )
    noise: Annotated[float, Field(ge=0, le=10)] = Field(
        0.0, description="standard deviation of Gaussian pixel noise, in standardised units"
    )


class Dataset(Strict):
    name: DatasetName = "digits"
    path: Path | None = Field(None, description="the .npz file or image folder; relative to the space file")
    input_size: Annotated[int, Field(ge=1, le=1024)] = 32
    validation_split: Annotated[float, Field(gt=0, le=0.9)] = 0.2
    subset: Annotated[int, Field(ge=2)] | None = None
    augmentation: Augmentation = Augmentation()
    corruption: Corruption = Corruption()


Optimizer = Literal["sgd", "adam", "adamw", "rmsprop"]
Schedule = Literal["constant", "step", "cosine", "plateau"]


class EarlyStopping(Strict):
    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    patience: Annotated[int, Field(ge=1, le=1000)] = 5


class Training(Strict):
    optimizer: Axis(Optimizer, _enum_schema(Optimizer.__args__)) = ["sgd"]
    learning_rate: Axis(Annotated[float, Field(gt=0, le=10)], {"type": "number", "exclusiveMinimum": 0}) = [0.05]
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    schedule: Schedule = "constant"
    milestones: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="epochs at which the `step` schedule divides the learning rate by 10"
    )
    plateau_patience: Annotated[int, Field(ge=1, le=1000)] = Field(
        3, description="epochs without validation gain before the `plateau` schedule divides the rate by 10"
    )
    weight_decay: Axis(Annotated[float, Field(ge=0, le=1)], {"type": "number", "minimum": 0}) = [0.0]
    batch_size: Axis(Annotated[int, Field(ge=1, le=65536)], {"type": "integer", "minimum": 1}) = [64]
    epochs: Annotated[int, Field(ge=1, le=10000)] = 10
    early_stopping: EarlyStopping | None = None
    distribute: Literal["none", "mirrored"] = Field(
        "none", description="mirrored: each trial trains data-parallel on every visible GPU (tf.distribute.MirroredStrategy)"
    )


Strategy = Literal["grid", "random", "bayesian", "hyperband", "evolution"]
Objective = Literal["val_accuracy", "val_loss", "accuracy", "loss"]


class Search(Strict):
    strategy: Strategy = "grid"
    objective: Objective = "val_accuracy"
    max_trials: Annotated[int, Field(ge=1, le=100000)] | None = Field(
        None, description="default: every candidate of the grid"
    )
    executions_per_trial: Annotated[int, Field(ge=1, le=100)] = 1
    # KerasTuner's oracles read a seed of 0 as "no seed" (a random one), so seeds start at 1.
    seed: Annotated[int, Field(ge=1, le=2**31 - 1)] = 1
    hyperband_factor: Annotated[int, Field(ge=2, le=100)] = 3
    population_size: Annotated[int, Field(ge=2, le=10000)] = Field(
        20, description="evolution: the population (P); the first P trials are random"
    )
    sample_size: Annotated[int, Field(ge=1, le=10000)] = Field(
        5, description="evolution: candidates drawn from the population to pick each parent (S)"
    )
    max_consecutive_failed_trials: Annotated[int, Field(ge=1, le=1000)] = 3
    max_params: Annotated[int, Field(ge=1)] | None = Field(
        None, description="candidates with more parameters fail without training"
    )


class Tracking(Strict):
    experiment: str | None = Field(None, description="MLflow experiment name; default: the space's name")


class Space(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
    dataset: Dataset = Dataset()
    model: Annotated[VGGModel | ResNetModel | CellsModel, Field(discriminator="family")]
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
            "milestones": training.milestones,
            "plateau_patience": training.plateau_patience,
            "epochs": training.epochs,
            "early_stopping": f"{stop.monitor}/{stop.patience}" if stop else None,
            "distribute": training.distribute,
            "strategy": search.strategy,
            "objective": search.objective,
            "max_trials": search.max_trials,
            "executions_per_trial": search.executions_per_trial,
            "seed": search.seed,
            "hyperband_factor": search.hyperband_factor,
            "population_size": search.population_size,
            "sample_size": search.sample_size,
            "max_params": search.max_params,
        }

    def axes(self) -> dict[str, list]:
        """Every searchable field, model axes first, in declaration order (the grid's order)."""
        model = self.model.axes()
        training = {k: getattr(self.training, k) for k in TRAINING_AXES}
        return model | training

    def varying_axes(self) -> dict[str, list]:
        return {k: v for k, v in self.axes().items() if len(v) > 1}

    @property
    def searches_cells(self) -> bool:
        return self.model.family == "cells" and self.model.searched

    def varying_names(self) -> list[str]:
        """What differs between trials: the varying axes, and `genotype` when the cells are searched."""
        return (["genotype"] if self.searches_cells else []) + list(self.varying_axes())

    def describe(self) -> str:
        """One line on what the search covers, for `validate` and the start of `run`."""
        axes = " x ".join(f"{k}({len(v)})" for k, v in self.varying_axes().items())
        if self.searches_cells:
            model = self.model
            cells = f"searched cells ({model.blocks} blocks, {len(model.ops)} ops: {model.cell_count():.1e} genotypes)"
            return f"cells, {cells}" + (f" x [{axes}]" if axes else "")
        return f"{self.model.family}, {self.grid_size()} candidates [{axes or 'no varying axis'}]"

    def grid_size(self) -> int:
        """Candidates in the grid; searched cells multiply it by every genotype they allow."""
        size = self.model.cell_count() if self.model.family == "cells" else 1
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
