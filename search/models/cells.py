"""NASNet-style cell networks (Zoph et al. 2018): a stem, stages of N normal cells, a reduction cell
between stages (half the side, twice the filters), a global-average-pooling head.

Every op sees its input already projected to the cell's `filters` channels, so any two ops can be added;
in a reduction cell the ops that read the cell's inputs use stride 2, so every block output has the reduced
size. Ops follow NASNet's ReLU-conv-BN order, with one separable conv per op (NASNet stacks two) to keep
proxy searches cheap.
"""

from __future__ import annotations

import keras
from keras import layers

from search.models.blocks import pointwise
from search.spec.genotypes import Block, Genotype, parse_genotype


def build_cells(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    genotype: str | Genotype,
    cells_per_stage: int,
    filters: int,
    stages: int,
    dropout: float,
    bn_momentum: float,
) -> keras.Model:
    genotype = parse_genotype(genotype) if isinstance(genotype, str) else genotype
    cell = _CellBuilder(bn_momentum)
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(filters * 2, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = cell.batch_norm(x, "stem")
    prev_prev = prev = x
    width = filters
    for stage in range(1, stages + 1):
        if stage > 1:
            width *= 2
            prev_prev, prev = prev, cell(prev_prev, prev, genotype.reduce, width, True, f"stage{stage}_reduce")
        for n in range(1, cells_per_stage + 1):
            prev_prev, prev = prev, cell(prev_prev, prev, genotype.normal, width, False, f"stage{stage}_normal{n}")
    x = layers.Activation("relu", name="head_relu")(prev)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="cells")


class _CellBuilder:
    """Builds one cell's layers; an object only to carry the BN momentum through the helpers."""

    def __init__(self, bn_momentum: float):
        self.bn_momentum = bn_momentum

    def __call__(self, prev_prev, prev, blocks: tuple[Block, ...], filters: int, reduction: bool, name: str):
        if prev_prev.shape[1] != prev.shape[1]:  # after a reduction cell: the older input is twice the side
            prev_prev = self.relu_conv_bn(prev_prev, filters, 1, 2, f"{name}_in0")
        else:
            prev_prev = self.relu_conv_bn(prev_prev, filters, 1, 1, f"{name}_in0")
        states = [prev_prev, self.relu_conv_bn(prev, filters, 1, 1, f"{name}_in1")]
        for b, block in enumerate(blocks, start=1):
            branches = []
            for side, op, state in zip("ab", block.ops, block.inputs):
                strides = 2 if reduction and state < 2 else 1
                branches.append(self.op(states[state], op, filters, strides, f"{name}_b{b}{side}"))
            states.append(layers.Add(name=f"{name}_b{b}_add")(branches))
        outputs = [states[s] for s in Genotype.unused(blocks)]
        return outputs[0] if len(outputs) == 1 else layers.Concatenate(name=f"{name}_out")(outputs)

    def op(self, x, op: str, filters: int, strides: int, name: str):
        name = f"{name}_{op}"
        if op == "identity":
            return x if strides == 1 else self.relu_conv_bn(x, filters, 1, strides, name)
        if op in ("avg3x3", "max3x3"):
            pool = layers.AveragePooling2D if op == "avg3x3" else layers.MaxPooling2D
            return pool(3, strides=strides, padding="same", name=f"{name}_pool")(x)
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        if op.startswith("sep"):
            kernel = int(op[3])
            x = layers.SeparableConv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_sepconv")(x)
        elif op == "conv1x7_7x1":
            x = layers.Conv2D(filters, (1, 7), strides=(1, strides), padding="same", use_bias=False, name=f"{name}_conv1x7")(x)
            x = layers.Conv2D(filters, (7, 1), strides=(strides, 1), padding="same", use_bias=False, name=f"{name}_conv7x1")(x)
        elif op == "dil3x3":  # Keras has no strided dilated conv: dilate, then keep every other pixel
            x = layers.Conv2D(filters, 3, dilation_rate=2, padding="same", use_bias=False, name=f"{name}_conv")(x)
            if strides > 1:
                x = layers.MaxPooling2D(1, strides=strides, padding="same", name=f"{name}_subsample")(x)
        else:
            raise ValueError(f"unknown cell op {op!r}")
        return self.batch_norm(x, name)

    def relu_conv_bn(self, x, filters: int, kernel: int, strides: int, name: str):
        x = layers.Activation("relu", name=f"{name}_relu")(x)
        if kernel == 1:
            x = pointwise(x, filters, strides, use_bias=False, name=name)
        else:
            x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
        return self.batch_norm(x, name)

    def batch_norm(self, x, name: str):
        return layers.BatchNormalization(momentum=self.bn_momentum, epsilon=1e-3, name=f"{name}_bn")(x)
