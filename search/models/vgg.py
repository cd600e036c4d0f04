"""VGG (Simonyan & Zisserman 2014) from its Table 1, with every design axis applicable.

With `bn="none"`, `conv="dense"`, `head="fc"` and the paper's widths this is the paper's net: config D
equals keras.applications.VGG16 and E equals VGG19, parameter for parameter.
"""

from __future__ import annotations

import keras
from keras import layers

from search.models import blocks
from search.models.blocks import Design, UnitStyle
from search.spec.architectures import VGG_CONFIGS, VGG_LRN_CONFIGS


def build_vgg(*, input_shape: tuple[int, int, int], num_classes: int, config: str, residual: bool, **shared) -> keras.Model:
    """Five conv stages closed by 2x2 max-pools, then the head.

    `residual=True` wraps every conv unit in a shortcut (1x1 projection where the width changes);
    `se=True` gates each stage's output before its pool; the first conv stays dense (MobileNet
    practice: a separable conv on the raw image saves nothing).
    """
    design = Design(**shared)
    style = design.style
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    first = True
    for s, stage in enumerate(VGG_CONFIGS[config], start=1):
        for u, layer in enumerate(stage, start=1):
            x = _vgg_unit(x, design.filters(layer.filters), 1 if layer.pointwise else design.kernel, style, f"block{s}_unit{u}", residual, first)
            if first and config in VGG_LRN_CONFIGS:
                x = blocks.LocalResponseNormalization(name=f"block{s}_unit{u}_lrn")(x)
            first = False
        if design.se:
            x = blocks.squeeze_excite(x, f"block{s}")
        x = layers.MaxPooling2D(2, strides=2, name=f"block{s}_pool")(x)
    if design.bn == "pre":
        x = blocks.bn_relu(x, style, "final")
    outputs = blocks.classifier_head(x, num_classes, design)
    return keras.Model(inputs, outputs, name=f"vgg_{config}")


def _vgg_unit(x, filters: int, kernel: int, style: UnitStyle, name: str, residual: bool, first: bool):
    if first and style.bn == "pre":
        # Pre-activation starts after the first conv, as in the pre-activation ResNet's stem.
        return blocks.conv(x, filters, kernel, style, name, force_dense=True)
    if not residual:
        return blocks.conv_unit(x, filters, kernel, style, name, force_dense=first)
    skip = blocks.shortcut(x, filters, 1, style, name)
    y = blocks.conv_unit(x, filters, kernel, style, name, activate=False, force_dense=first)
    return blocks.merge(y, skip, style, name, residual=True)
