"""Model families: builders that turn concrete axis values into a Keras model.

`build_model(family, ...)` is the one entry point; each family's builder reads its table from
`search.architectures` and its layers from `search.blocks`.
"""

from __future__ import annotations

from search.families.cells import build_cells
from search.families.resnet import build_resnet
from search.families.vgg import build_vgg

BUILDERS = {"vgg": build_vgg, "resnet": build_resnet, "cells": build_cells}


def build_model(family: str, *, input_shape: tuple[int, int, int], num_classes: int, **axes):
    """Build one candidate. `axes` are the space's model axes with one value each."""
    if family not in BUILDERS:
        raise ValueError(f"unknown model family {family!r}; known: {', '.join(BUILDERS)}")
    return BUILDERS[family](input_shape=input_shape, num_classes=num_classes, **axes)
