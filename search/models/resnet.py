"""ResNets (He et al. 2015): CIFAR-style 6n+2 nets and ImageNet-style 18/34 with basic blocks.

`residual=False` gives the plain counterpart with exactly the same conv layers, the comparison of the
degradation problem.
"""

from __future__ import annotations

import keras
from keras import layers

from search.models import blocks
from search.models.blocks import Design
from search.spec.architectures import resnet_layout


def build_resnet(*, input_shape: tuple[int, int, int], num_classes: int, depth: int, residual: bool, **shared) -> keras.Model:
    """Stem, stages of basic blocks (the first block of each later stage halves the side), head.

    The stem keeps its own kernel (3x3, or 7x7/2 + max-pool for ImageNet nets); the `kernel` axis
    sets the convs inside the blocks.
    """
    layout = resnet_layout(depth)
    design = Design(**shared)
    style = design.style
    inputs = keras.Input(input_shape, name="image")
    stem_kernel, stem_strides = (7, 2) if layout.imagenet else (3, 1)
    stem_filters = design.filters(layout.filters[0])
    if design.bn == "pre":  # the first block pre-activates the stem's output
        x = blocks.conv(inputs, stem_filters, stem_kernel, style, "stem", stem_strides, force_dense=True)
    else:
        x = blocks.conv_unit(inputs, stem_filters, stem_kernel, style, "stem", stem_strides, force_dense=True)
    if layout.imagenet:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for s, (n_blocks, filters) in enumerate(zip(layout.blocks, layout.filters), start=1):
        for b in range(1, n_blocks + 1):
            strides = 2 if b == 1 and s > 1 else 1
            x = blocks.basic_block(x, design.filters(filters), design.kernel, strides, style, f"stage{s}_block{b}", residual, design.se)
    if design.bn == "pre":
        x = blocks.bn_relu(x, style, "final")
    outputs = blocks.classifier_head(x, num_classes, design)
    kind = "resnet" if residual else "plain"
    return keras.Model(inputs, outputs, name=f"{kind}{depth}")
