"""ResNets (He et al. 2015): CIFAR-style 6n+2 nets and ImageNet-style 18/34 with basic blocks.

`residual=False` gives the plain counterpart with exactly the same conv layers, the comparison of the
degradation problem.
"""

from __future__ import annotations

import keras
from keras import layers

from search import blocks
from search.architectures import resnet_layout
from search.blocks import UnitStyle, scaled


def build_resnet(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    depth: int = 20,
    residual: bool = True,
    kernel: int = 3,
    bn: str = "post",
    conv: str = "dense",
    head: str = "gap",
    width: float = 1.0,
    se: bool = False,
    dropout: float = 0.0,
    fc_units: int = 4096,
    bn_momentum: float = 0.9,
) -> keras.Model:
    """Stem, stages of basic blocks (the first block of each later stage halves the side), head.

    The stem keeps its own kernel (3x3, or 7x7/2 + max-pool for ImageNet nets); the `kernel` axis
    sets the convs inside the blocks.
    """
    layout = resnet_layout(depth)
    style = UnitStyle(conv=conv, bn=bn, bn_momentum=bn_momentum)
    inputs = keras.Input(input_shape, name="image")
    stem_kernel, stem_strides = (7, 2) if layout.imagenet else (3, 1)
    stem_filters = scaled(layout.filters[0], width)
    if bn == "pre":  # the first block pre-activates the stem's output
        x = blocks.conv(inputs, stem_filters, stem_kernel, style, "stem", stem_strides, force_dense=True)
    else:
        x = blocks.conv_unit(inputs, stem_filters, stem_kernel, style, "stem", stem_strides, force_dense=True)
    if layout.imagenet:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for s, (n_blocks, filters) in enumerate(zip(layout.blocks, layout.filters), start=1):
        for b in range(1, n_blocks + 1):
            strides = 2 if b == 1 and s > 1 else 1
            x = blocks.basic_block(x, scaled(filters, width), kernel, strides, style, f"stage{s}_block{b}", residual, se)
    if bn == "pre":
        x = blocks.bn_relu(x, style, "final")
    outputs = blocks.classifier_head(x, num_classes, head, fc_units, dropout)
    kind = "resnet" if residual else "plain"
    return keras.Model(inputs, outputs, name=f"{kind}{depth}")
