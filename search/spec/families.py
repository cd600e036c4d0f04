"""Model families as schema: one class per family, and `FAMILIES`, the registry the reader and the
builders' registry (`search.models.registry`) look families up in.

Each family declares its axes (with defaults), its fixed settings, the smallest input each of its
choices can take, and whether its structure itself is searched (NASNet-style cells without a genotype).
Code elsewhere asks these questions of `space.model`; nothing branches on a family's name.
"""

from __future__ import annotations

import random
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from search.spec.architectures import (
    KERAS_APPS,
    MAX_RESNET_DEPTH,
    XCEPTION_WIDTHS,
    cells_min_input,
    resnet_layout,
    resnet_min_input,
    vgg_min_input,
    xception_min_input,
)
from search.spec.fields import Axis, IntChoice, Strict, enum_schema, unique
from search.spec.genotypes import (
    MAX_BLOCKS,
    MAX_GENOTYPE_CHARS,
    OPS,
    genotype_from_values,
    hyperparameter_names,
    parse_genotype,
    random_genotype,
)

BN = Literal["none", "post", "pre"]
ConvKind = Literal["dense", "separable"]
Head = Literal["gap", "fc"]
Kernel = Literal[1, 3, 5, 7]
VGGConfig = Literal["A", "A-LRN", "B", "C", "D", "E"]
KerasApp = Literal[tuple(KERAS_APPS)]
_PositiveFraction = Annotated[float, Field(gt=0, le=8)]
_Dropout = Annotated[float, Field(ge=0, lt=1)]
_BNMomentum = Annotated[float, Field(gt=0, lt=1)]
DROPOUT = Axis(_Dropout, {"type": "number", "minimum": 0, "exclusiveMaximum": 1})
# Keras' default 0.99 leaves the moving statistics unsettled after the few hundred steps of a
# small-data run, and validation accuracy then sits at chance; 0.9 settles within ~50 steps.
BN_MOMENTUM = Axis(_BNMomentum, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1})


class Family(Strict):
    """What every family answers. `searchable`: its structure can be left out and searched."""

    searchable: ClassVar[bool] = False
    structure_unit: ClassVar[str] = ""  # what a searched structure is counted in, for `plan`

    @classmethod
    def name(cls) -> str:
        return cls.model_fields["family"].annotation.__args__[0]

    def axes(self) -> dict[str, list]:
        """The searchable fields (one value or choices each), in declaration order: the grid's order."""
        return {k: v for k, v in self if k != "family"}

    def settings(self) -> dict[str, object]:
        """Fixed (non-axis) settings, logged with every run."""
        return {}

    def builder_settings(self) -> dict[str, object]:
        """Fixed settings the family's builder takes besides the axis values."""
        return {}

    def input_needs(self) -> list[tuple[str, object, int]]:
        """(key, value, smallest square input side) for each choice that downsamples."""
        return []

    @property
    def searched(self) -> bool:
        """The structure itself is searched (and so cannot be enumerated by a grid)."""
        return False

    def structure_count(self) -> int:
        """How many structures a searched family allows (1 when it is fixed)."""
        return 1

    def structure_names(self) -> list[str]:
        """The axes a searchable structure is recorded under when searched (the keys of `structure_values`)."""
        return []

    def describe_structure(self) -> str:
        """One phrase on what a searched structure covers."""
        return ""

    def structure_choices(self) -> dict[str, list]:
        """The hyperparameters of a searched structure: name -> choices."""
        return {}

    def structure_values(self, chosen: dict) -> dict:
        """The structure's hyperparameter values folded into the axis values the builder takes."""
        return {}

    def sample_structure(self, rng: random.Random) -> dict:
        """One uniformly drawn structure, as axis values (what a random first trial could be)."""
        return {}


class ConvNetModel(Family):
    """Axes every conv-net family shares. Defaults are the common Keras practice, not the paper."""

    bn: Axis(BN, enum_schema(BN.__args__)) = ["post"]
    conv: Axis(ConvKind, enum_schema(ConvKind.__args__)) = ["dense"]
    kernel: Axis(IntChoice(*Kernel.__args__), enum_schema(Kernel.__args__)) = [3]
    head: Axis(Head, enum_schema(Head.__args__)) = ["gap"]
    width: Axis(_PositiveFraction, {"type": "number", "exclusiveMinimum": 0, "maximum": 8}) = [1.0]
    se: Axis(bool, {"type": "boolean"}) = [False]
    dropout: DROPOUT = [0.0]
    fc_units: Axis(Annotated[int, Field(ge=1, le=65536)], {"type": "integer", "minimum": 1}) = [4096]
    bn_momentum: BN_MOMENTUM = [0.9]


class VGGModel(ConvNetModel):
    family: Literal["vgg"]
    config: Axis(VGGConfig, enum_schema(VGGConfig.__args__)) = ["D"]
    residual: Axis(bool, {"type": "boolean"}) = [False]

    def input_needs(self) -> list[tuple[str, object, int]]:
        return [("config", config, vgg_min_input(config)) for config in self.config]


def _check_resnet_depth(depth: int) -> int:
    resnet_layout(depth)  # raises ValueError with the allowed depths
    return depth


class ResNetModel(ConvNetModel):
    family: Literal["resnet"]
    depth: Axis(
        Annotated[int, AfterValidator(_check_resnet_depth)], {"type": "integer", "minimum": 8, "maximum": MAX_RESNET_DEPTH}
    ) = [20]
    residual: Axis(bool, {"type": "boolean"}) = [True]

    def input_needs(self) -> list[tuple[str, object, int]]:
        return [("depth", depth, resnet_min_input(depth)) for depth in self.depth]


def _check_genotype(text: str) -> str:
    return str(parse_genotype(text))  # raises GenotypeError (a ValueError) naming the cell and block


class CellsModel(Family):
    """NASNet-style cells. Without `genotype` the cells themselves are searched: every block's two inputs
    and two ops are hyperparameters; with it, the listed cells are trained (transfer, hand-designed cells)."""

    searchable: ClassVar[bool] = True
    structure_unit: ClassVar[str] = "cell genotypes"

    family: Literal["cells"]
    genotype: Axis(Annotated[str, AfterValidator(_check_genotype)], {"type": "string", "maxLength": MAX_GENOTYPE_CHARS}) | None = Field(
        None, description="fixed cells 'normal: op(state)+op(state), ...; reduce: ...'; default: search them"
    )
    blocks: Annotated[int, Field(ge=1, le=MAX_BLOCKS)] = Field(5, description="blocks per searched cell (B)")
    ops: Annotated[list[Literal[OPS]], Field(min_length=1), AfterValidator(unique)] = Field(
        list(OPS), description="the ops a searched block may apply"
    )
    stages: Annotated[int, Field(ge=1, le=6)] = Field(3, description="stages of normal cells, a reduction cell between two")
    cells_per_stage: Axis(Annotated[int, Field(ge=1, le=50)], {"type": "integer", "minimum": 1}) = [2]
    filters: Axis(Annotated[int, Field(ge=1, le=4096)], {"type": "integer", "minimum": 1}) = [16]
    dropout: DROPOUT = [0.0]
    bn_momentum: BN_MOMENTUM = [0.9]

    @property
    def searched(self) -> bool:
        return self.genotype is None

    def axes(self) -> dict[str, list]:
        fixed = {} if self.searched else {"genotype": self.genotype}
        return fixed | {k: getattr(self, k) for k in ("cells_per_stage", "filters", "dropout", "bn_momentum")}

    def settings(self) -> dict[str, object]:
        return {"blocks": self.blocks, "ops": ",".join(self.ops), "stages": self.stages} if self.searched else {"stages": self.stages}

    def builder_settings(self) -> dict[str, object]:
        return {"stages": self.stages}

    def input_needs(self) -> list[tuple[str, object, int]]:
        return [("stages", self.stages, cells_min_input(self.stages))]

    def structure_count(self) -> int:
        """How many distinct genotypes the searched cells allow (a grid could never enumerate them)."""
        if not self.searched:
            return 1
        count = 1
        for choices in self.structure_choices().values():
            count *= len(choices)
        return count

    def structure_names(self) -> list[str]:
        return ["genotype"]

    def describe_structure(self) -> str:
        return f"searched cells ({self.blocks} blocks, {len(self.ops)} ops: {self.structure_count():.1e} genotypes)"

    def structure_choices(self) -> dict[str, list]:
        if not self.searched:
            return {}
        return {name: inputs if inputs is not None else list(self.ops) for name, inputs in hyperparameter_names(self.blocks).items()}

    def structure_values(self, chosen: dict) -> dict:
        return {"genotype": str(genotype_from_values(chosen, self.blocks))} if self.searched else {}

    def sample_structure(self, rng: random.Random) -> dict:
        return {"genotype": str(random_genotype(self.blocks, self.ops, rng))} if self.searched else {}


class XceptionModel(Family):
    """The Xception-style net of the modern-convnet notes, as written there: a 5x5 conv stem, then per width
    (BN, ReLU, separable conv) x2 and a 3x3/2 max-pool, added to a 1x1/2 projection of the stage's input;
    global average pooling, dropout 0.5, softmax. The defaults are that net; `bn: post` reorders each unit
    to conv-BN-ReLU, `bn: none` drops BN, `conv: dense` is its dense counterpart, `se` gates each stage's
    branch before the addition."""

    family: Literal["xception"]
    widths: Annotated[list[Annotated[int, Field(ge=1, le=4096)]], Field(min_length=1, max_length=8)] = Field(
        list(XCEPTION_WIDTHS), description="filters of each stage (each halves the side)"
    )
    bn: Axis(BN, enum_schema(BN.__args__)) = ["pre"]
    conv: Axis(ConvKind, enum_schema(ConvKind.__args__)) = ["separable"]
    kernel: Axis(IntChoice(*Kernel.__args__), enum_schema(Kernel.__args__)) = [3]
    width: Axis(_PositiveFraction, {"type": "number", "exclusiveMinimum": 0, "maximum": 8}) = [1.0]
    se: Axis(bool, {"type": "boolean"}) = [False]
    dropout: DROPOUT = [0.5]
    bn_momentum: BN_MOMENTUM = [0.9]

    def axes(self) -> dict[str, list]:
        return {k: v for k, v in self if k not in ("family", "widths")}

    def settings(self) -> dict[str, object]:
        return {"widths": "-".join(map(str, self.widths))}

    def builder_settings(self) -> dict[str, object]:
        return {"widths": tuple(self.widths)}

    def input_needs(self) -> list[tuple[str, object, int]]:
        return [("widths", self.widths, xception_min_input())]


Weights = Literal["none", "imagenet"]


class KerasAppModel(Family):
    """An architecture of keras.applications as a baseline: its convolutional base as Keras builds it for
    the space's input (`include_top=False`, global average pooling), then dropout and a softmax layer for
    the space's classes; the same net whether it starts from random weights or from ImageNet's."""

    family: Literal["keras_app"]
    architecture: Axis(KerasApp, enum_schema(KerasApp.__args__))
    weights: Weights = Field("none", description="none (random initialisation) or imagenet (from Keras' cache; 3 channels)")
    dropout: DROPOUT = [0.0]
    bn_momentum: BN_MOMENTUM = [0.9]  # of every BN layer of the base: Keras' 0.99 sits at chance after a small run

    def axes(self) -> dict[str, list]:
        return {"architecture": self.architecture, "dropout": self.dropout, "bn_momentum": self.bn_momentum}

    def settings(self) -> dict[str, object]:
        return {"weights": self.weights}

    def builder_settings(self) -> dict[str, object]:
        return {"weights": self.weights}

    def input_needs(self) -> list[tuple[str, object, int]]:
        return [("architecture", name, KERAS_APPS[name]) for name in self.architecture]


FAMILIES: dict[str, type[Family]] = {model.name(): model for model in (VGGModel, ResNetModel, CellsModel, XceptionModel, KerasAppModel)}
