"""The Xception-style net of the modern-convnet notes (Chollet, "Deep Learning with Python"), as written there.

    x = Conv2D(32, 5, use_bias=False)(inputs)
    for size in [32, 64, 128, 256, 512]:
        residual = x
        x = BN, ReLU, SeparableConv2D(size, 3, padding="same", use_bias=False)   # twice
        x = MaxPooling2D(3, strides=2, padding="same")(x)
        x = add([x, Conv2D(size, 1, strides=2, padding="same", use_bias=False)(residual)])
    GlobalAveragePooling2D, Dropout(0.5), Dense(classes, softmax)

`tests/test_models.py` checks the default build against that code, parameter for parameter.
"""

from __future__ import annotations

import keras
from keras import layers

from search.models import blocks
from search.models.blocks import UnitStyle
from search.spec.architectures import XCEPTION_STEM_KERNEL


def build_xception(*, input_shape: tuple[int, int, int], num_classes: int, widths: tuple[int, ...], bn: str, conv: str, kernel: int,
                   width: float, se: bool, dropout: float, bn_momentum: float) -> keras.Model:
    style = UnitStyle(conv=conv, bn=bn, bn_momentum=bn_momentum)
    inputs = keras.Input(input_shape, name="image")
    stem = max(1, round(widths[0] * width))
    x = layers.Conv2D(stem, XCEPTION_STEM_KERNEL, use_bias=bn == "none", name="stem_conv")(inputs)
    if bn == "post":  # post-activation units start with a conv: the stem's output is activated here
        x = blocks.bn_relu(x, style, "stem")
    for s, size in enumerate(widths, start=1):
        filters, name = max(1, round(size * width)), f"stage{s}"
        residual = x
        for u in (1, 2):
            x = _unit(x, filters, kernel, style, f"{name}_unit{u}")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
        if se:
            x = blocks.squeeze_excite(x, name)
        x = layers.Add(name=f"{name}_add")([x, blocks.shortcut(residual, filters, 2, style, name)])  # BN'd under post
    outputs = blocks.gap_head(x, num_classes, dropout)
    return keras.Model(inputs, outputs, name="xception_style")


def _unit(x, filters: int, kernel: int, style: UnitStyle, name: str):
    """(BN, ReLU, conv) as written; (conv, BN, ReLU) under post; (ReLU, conv) without BN."""
    if style.bn == "none":
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        return blocks.conv(x, filters, kernel, style, name)
    return blocks.conv_unit(x, filters, kernel, style, name)
