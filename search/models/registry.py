"""The builders of the model families, paired with their schema in `search.spec.families`.

`build_candidate(model, values, ...)` is what the hypermodel and `plan` call: the space's model schema
and one chosen value per axis. `build_model(family, ...)` builds from keyword values, the family's
defaults filling the rest (tests, benchmarks). Neither knows a family by name: the registry does.
"""

from __future__ import annotations

import keras

from search.models.cells import build_cells
from search.models.keras_apps import build_keras_app
from search.models.resnet import build_resnet
from search.models.vgg import build_vgg
from search.models.xception import build_xception
from search.spec.families import FAMILIES, CellsModel, Family, KerasAppModel, ResNetModel, VGGModel, XceptionModel

BUILDERS = {VGGModel.name(): build_vgg, ResNetModel.name(): build_resnet, CellsModel.name(): build_cells,
            XceptionModel.name(): build_xception, KerasAppModel.name(): build_keras_app}


def build_candidate(model: Family, values: dict, *, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """One candidate of `model`'s family: `values` holds one value per model axis (a searched structure
    folded in); the family's fixed settings come from `model`."""
    build = BUILDERS[model.family]
    return build(input_shape=input_shape, num_classes=num_classes, **values, **model.builder_settings())


def build_model(family: str, *, input_shape: tuple[int, int, int], num_classes: int, **values) -> keras.Model:
    """Build from one value per axis (and settings such as cells' `stages`); the rest take the family's
    defaults, checked by the same schema as a space file."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    model = FAMILIES[family].model_validate({"family": family, **values})
    chosen = {name: choices[0] for name, choices in model.axes().items()}
    return build_candidate(model, chosen, input_shape=input_shape, num_classes=num_classes)
