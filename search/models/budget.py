"""The memory one candidate needs to train, counted from the architecture tables without building it.

Building the largest candidate of a space to measure it would itself take the memory (a 65,536-unit FC
head holds 1.6 billion weights), so each family's net is walked here as shapes: the parameters (with
their gradients and optimizer slots) and the elements every layer outputs for one image (kept for the
backward pass, and matched by as many gradients). The walk follows the builders in this package layer
by layer; `tests/test_plan_memory.py` checks its parameter count against the built models, and the README's
*Memory* the whole estimate against measured peaks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import product

from search.spec.architectures import VGG_CONFIGS, VGG_LRN_CONFIGS, XCEPTION_STEM_KERNEL, resnet_layout
from search.spec.families import CellsModel, Family, KerasAppModel, ResNetModel, VGGModel, XceptionModel
from search.spec.genotypes import OPS, Block, Genotype, parse_genotype
from search.spec.schema import Space

FLOAT = 4  # bytes: every weight, gradient, slot and activation is float32
# Axes along which memory only grows: the largest candidate takes their largest value.
GROWING = ("width", "fc_units", "kernel", "filters", "cells_per_stage", "dropout")
IRRELEVANT = ("bn_momentum",)
# The forward activations kept for the backward pass, plus the gradients alive at once while it runs
# (it frees each forward tensor once used: measured peaks are below this; see the README's *Memory*).
BACKWARD = 1.5


@dataclass
class Tally:
    """Parameters and per-image activation elements of one net, added up layer by layer."""

    params: int = 0
    activations: int = 0
    parts: dict[str, int] = field(default_factory=dict)  # parameters by part of the net (body, head)

    def out(self, side: int, channels: int, count: int = 1) -> None:
        self.activations += count * side * side * channels

    def weights(self, n: int, part: str = "body") -> None:
        self.params += n
        self.parts[part] = self.parts.get(part, 0) + n


@dataclass(frozen=True)
class ModelMemory:
    """One candidate's count: `params` weights, `activations` float32 elements per image in a forward pass."""

    params: int
    activations: int
    head_params: int
    values: dict

    def training_bytes(self, batch_size: int, slots: int) -> int:
        """Weights, gradients, `slots` optimizer slots and an update's temporary per weight; every
        activation of one batch kept for the backward pass, and the gradients flowing back through them."""
        return FLOAT * (self.params * (3 + slots) + math.ceil(BACKWARD * batch_size * self.activations))


def optimizer_slots(optimizer: str, momentum: float) -> int:
    """Per-weight state Keras keeps: momentum's velocity; Adam's two moments; RMSprop's average (+ momentum)."""
    return {"sgd": int(momentum > 0), "adam": 2, "adamw": 2, "rmsprop": 1 + int(momentum > 0)}[optimizer]


def largest_candidate(space: Space, input_shape: tuple[int, int, int], num_classes: int) -> ModelMemory:
    """The candidate of the space that needs the most memory to train its largest batch (ties: more parameters)."""
    batch, slots = max(space.training.batch_size), space_slots(space)
    return max(candidates(space, input_shape, num_classes), key=lambda m: (m.training_bytes(batch, slots), m.params))


def space_slots(space: Space) -> int:
    """The most optimizer slots per weight any of the space's optimizers keeps."""
    return max(optimizer_slots(name, space.training.momentum) for name in space.training.optimizer)


def candidates(space: Space, input_shape: tuple[int, int, int], num_classes: int) -> Iterator[ModelMemory]:
    """The count of every distinct candidate that could be the largest: axes along which memory only grows
    at their largest value, the others enumerated; a searched structure at its costliest."""
    model = space.model
    axes = {}
    for name, choices in model.axes().items():
        if name in IRRELEVANT:
            axes[name] = choices[:1]
        elif name in GROWING:
            axes[name] = [max(choices)]
        else:
            axes[name] = choices
    count = COUNTERS[model.family]
    for combination in product(*axes.values()):
        values = dict(zip(axes, combination))
        yield count(model, values, input_shape, num_classes)


# ---- conv nets (VGG, ResNet) ---------------------------------------------------------------------


def _filters(values: dict, filters: int) -> int:
    return max(1, round(filters * values["width"]))


def _conv(t: Tally, side_in: int, side_out: int, c_in: int, c_out: int, kernel: int, values: dict, force_dense: bool = False) -> None:
    """A bare conv (blocks.conv): dense or depthwise-separable, a bias only without batch-norm."""
    bias = c_out if values["bn"] == "none" else 0
    if values["conv"] == "separable" and kernel > 1 and not force_dense:
        t.weights(kernel * kernel * c_in + c_in * c_out + bias)
        t.out(side_out, c_in)  # the depthwise output
    else:
        t.weights(kernel * kernel * c_in * c_out + bias)
        if kernel == 1 and side_out != side_in:
            t.out(side_out, c_in)  # blocks.pointwise subsamples before its 1x1 conv
    t.out(side_out, c_out)


def _bn(t: Tally, side: int, channels: int) -> None:
    t.weights(4 * channels)  # gamma, beta, moving mean and variance
    t.out(side, channels)


def _conv_unit(t: Tally, side_in: int, side_out: int, c_in: int, c_out: int, kernel: int, values: dict,
               activate: bool = True, force_dense: bool = False) -> None:
    """blocks.conv_unit: BN-ReLU-conv (pre), conv-BN-ReLU (post), conv-ReLU (none)."""
    if values["bn"] == "pre":
        _bn(t, side_in, c_in)
        t.out(side_in, c_in)
        _conv(t, side_in, side_out, c_in, c_out, kernel, values, force_dense)
        return
    _conv(t, side_in, side_out, c_in, c_out, kernel, values, force_dense)
    if values["bn"] == "post":
        _bn(t, side_out, c_out)
    if activate:
        t.out(side_out, c_out)


def _shortcut(t: Tally, side_out: int, c_in: int, c_out: int, strides: int, values: dict) -> None:
    if strides == 1 and c_in == c_out:
        return
    t.weights(c_in * c_out + (c_out if values["bn"] == "none" else 0))
    if strides > 1:
        t.out(side_out, c_in)  # blocks.pointwise subsamples before its 1x1 conv
    t.out(side_out, c_out)
    if values["bn"] == "post":
        _bn(t, side_out, c_out)


def _se(t: Tally, side: int, channels: int) -> None:
    reduced = max(1, channels // 16)
    t.weights(channels * reduced + reduced + reduced * channels + channels)
    t.out(1, channels + reduced + channels)
    t.out(side, channels)  # the gated output


def _merge(t: Tally, side: int, channels: int, values: dict, residual: bool, se: bool) -> None:
    if se:
        _se(t, side, channels)
    if residual:
        t.out(side, channels)
    if values["bn"] != "pre":
        t.out(side, channels)


def _head(t: Tally, side: int, channels: int, num_classes: int, values: dict) -> None:
    """blocks.classifier_head: flatten + two FC layers, or global average pooling; then softmax."""
    if values["head"] == "fc":
        units, features = values["fc_units"], side * side * channels
        t.out(side, channels)  # flatten
        for inputs in (features, units):
            t.weights(inputs * units + units, "head")
            t.out(1, units, 2 + 2 * (values["dropout"] > 0))  # matmul, ReLU (dropout output and mask)
        t.weights(units * num_classes + num_classes, "head")
    else:
        t.out(1, channels, 1 + 2 * (values["dropout"] > 0))
        t.weights(channels * num_classes + num_classes, "head")
    t.out(1, num_classes, 2)


def count_vgg(model: VGGModel, values: dict, input_shape: tuple[int, int, int], num_classes: int) -> ModelMemory:
    """Follows models/vgg.py."""
    t = Tally()
    side, channels = input_shape[0], input_shape[2]
    first = True
    for stage in VGG_CONFIGS[values["config"]]:
        for layer in stage:
            filters = _filters(values, layer.filters)
            kernel = 1 if layer.pointwise else values["kernel"]
            if first and values["bn"] == "pre":
                _conv(t, side, side, channels, filters, kernel, values, force_dense=True)
            elif not values["residual"]:
                _conv_unit(t, side, side, channels, filters, kernel, values, force_dense=first)
            else:
                _shortcut(t, side, channels, filters, 1, values)
                _conv_unit(t, side, side, channels, filters, kernel, values, activate=False, force_dense=first)
                _merge(t, side, filters, values, residual=True, se=False)
            if first and values["config"] in VGG_LRN_CONFIGS:
                t.out(side, filters, 5)  # squared, padded, window sum, power, quotient
            channels, first = filters, False
        if values["se"]:
            _se(t, side, channels)
        side //= 2
        t.out(side, channels)
    if values["bn"] == "pre":
        _bn(t, side, channels)
        t.out(side, channels)
    _head(t, side, channels, num_classes, values)
    return ModelMemory(t.params, t.activations, t.parts.get("head", 0), values)


def count_resnet(model: ResNetModel, values: dict, input_shape: tuple[int, int, int], num_classes: int) -> ModelMemory:
    """Follows models/resnet.py ('same' padding: a stride of 2 gives ceil(side / 2))."""
    layout = resnet_layout(values["depth"])
    t = Tally()
    side, channels = input_shape[0], input_shape[2]
    stem_kernel, stem_strides = (7, 2) if layout.imagenet else (3, 1)
    stem = _filters(values, layout.filters[0])
    out = math.ceil(side / stem_strides)
    if values["bn"] == "pre":
        _conv(t, side, out, channels, stem, stem_kernel, values, force_dense=True)
    else:
        _conv_unit(t, side, out, channels, stem, stem_kernel, values, force_dense=True)
    side, channels = out, stem
    if layout.imagenet:
        side = math.ceil(side / 2)
        t.out(side, channels)
    residual, kernel = values["residual"], values["kernel"]
    for s, (n_blocks, stage_filters) in enumerate(zip(layout.blocks, layout.filters), start=1):
        filters = _filters(values, stage_filters)
        for b in range(1, n_blocks + 1):
            strides = 2 if b == 1 and s > 1 else 1
            out = math.ceil(side / strides)
            if values["bn"] == "pre":
                _bn(t, side, channels)
                t.out(side, channels)
                if residual:
                    _shortcut(t, out, channels, filters, strides, values)
                _conv(t, side, out, channels, filters, kernel, values)
                _conv_unit(t, out, out, filters, filters, kernel, values)
            else:
                if residual:
                    _shortcut(t, out, channels, filters, strides, values)
                _conv_unit(t, side, out, channels, filters, kernel, values)
                _conv_unit(t, out, out, filters, filters, kernel, values, activate=False)
            _merge(t, out, filters, values, residual, values["se"])
            side, channels = out, filters
    if values["bn"] == "pre":
        _bn(t, side, channels)
        t.out(side, channels)
    _head(t, side, channels, num_classes, values)
    return ModelMemory(t.params, t.activations, t.parts.get("head", 0), values)


# ---- NASNet-style cells ----------------------------------------------------------------------------


def _cell_bn(t: Tally, side: int, channels: int) -> None:
    t.weights(4 * channels)
    t.out(side, channels)


def _relu_conv_bn(t: Tally, side_in: int, side_out: int, c_in: int, c_out: int) -> None:
    """A 1x1 conv (the only kernel the builder passes here), subsampled first when strided."""
    t.out(side_in, c_in)
    t.weights(c_in * c_out)
    if side_out != side_in:
        t.out(side_out, c_in)
    t.out(side_out, c_out)
    _cell_bn(t, side_out, c_out)


def _op(t: Tally, op: str, side_in: int, side_out: int, filters: int) -> None:
    """models/cells.py's ops on a `filters`-channel input."""
    if op == "identity":
        if side_in != side_out:
            _relu_conv_bn(t, side_in, side_out, filters, filters)
        return
    if op in ("avg3x3", "max3x3"):
        t.out(side_out, filters)
        return
    t.out(side_in, filters)  # ReLU
    if op.startswith("sep"):
        kernel = int(op[3])
        t.weights(kernel * kernel * filters + filters * filters)
        t.out(side_out, filters, 2)  # depthwise and pointwise outputs
    elif op == "conv1x7_7x1":
        t.weights(2 * 7 * filters * filters)
        t.activations += side_in * side_out * filters
        t.out(side_out, filters)
    elif op == "dil3x3":
        t.weights(9 * filters * filters)
        t.out(side_in, filters)
        if side_in != side_out:
            t.out(side_out, filters)
    else:
        raise ValueError(f"unknown cell op {op!r}")
    _cell_bn(t, side_out, filters)


def _costliest_op(ops: tuple[str, ...], side_in: int, side_out: int, filters: int) -> Tally:
    """The most parameters and the most activations any allowed op takes (possibly of two ops)."""
    tallies = []
    for op in ops:
        tally = Tally()
        _op(tally, op, side_in, side_out, filters)
        tallies.append(tally)
    return Tally(max(x.params for x in tallies), max(x.activations for x in tallies))


def _cell(t: Tally, prev_prev: tuple[int, int], prev: tuple[int, int], blocks: tuple[Block, ...] | None,
          ops: tuple[str, ...], n_blocks: int, filters: int, reduction: bool) -> tuple[int, int]:
    """One cell (models/cells.py `_CellBuilder`); `blocks=None`: a searched cell at its costliest (every op
    the costliest allowed, reading the cell's inputs, and every block in the output). Returns (side, channels)."""
    (pp_side, pp_channels), (side, channels) = prev_prev, prev
    _relu_conv_bn(t, pp_side, side, pp_channels, filters)
    _relu_conv_bn(t, side, side, channels, filters)
    out = math.ceil(side / 2) if reduction else side
    if blocks is None:
        worst = _costliest_op(ops, side, out, filters)
        t.weights(2 * n_blocks * worst.params)
        t.activations += 2 * n_blocks * worst.activations
        t.out(out, filters, n_blocks)  # the adds
        unused = n_blocks
    else:
        for block in blocks:
            for op, state in zip(block.ops, block.inputs):
                reads_input = state < 2
                _op(t, op, side if reads_input else out, out if reduction else side, filters)
            t.out(out, filters)
        unused = len(Genotype.unused(blocks))
    if unused > 1:
        t.out(out, filters * unused)  # the concatenation
    return out, filters * unused


def count_cells(model: CellsModel, values: dict, input_shape: tuple[int, int, int], num_classes: int) -> ModelMemory:
    """Follows models/cells.py; a searched genotype at its costliest."""
    genotype = parse_genotype(values["genotype"]) if values.get("genotype") else None
    ops, n_blocks = tuple(model.ops if genotype is None else OPS), model.blocks
    filters = values["filters"]
    t = Tally()
    side, channels = input_shape[0], input_shape[2]
    t.weights(9 * channels * 2 * filters)
    t.out(side, 2 * filters)
    _cell_bn(t, side, 2 * filters)
    prev_prev = prev = (side, 2 * filters)
    width = filters
    for stage in range(1, model.stages + 1):
        if stage > 1:
            width *= 2
            cell = genotype.reduce if genotype else None
            prev_prev, prev = prev, _cell(t, prev_prev, prev, cell, ops, n_blocks, width, True)
        for _ in range(values["cells_per_stage"]):
            cell = genotype.normal if genotype else None
            prev_prev, prev = prev, _cell(t, prev_prev, prev, cell, ops, n_blocks, width, False)
    side, channels = prev
    t.out(side, channels)  # head ReLU
    t.out(1, channels, 1 + 2 * (values["dropout"] > 0))
    t.weights(channels * num_classes + num_classes, "head")
    t.out(1, num_classes, 2)
    return ModelMemory(t.params, t.activations, t.parts.get("head", 0), values)


# ---- the Xception-style net and keras.applications ------------------------------------------------


def count_xception(model: XceptionModel, values: dict, input_shape: tuple[int, int, int], num_classes: int) -> ModelMemory:
    """Follows models/xception.py."""
    t = Tally()
    side, channels = input_shape[0] - XCEPTION_STEM_KERNEL + 1, input_shape[2]
    stem = _filters(values, model.widths[0])
    t.weights(XCEPTION_STEM_KERNEL**2 * channels * stem + (stem if values["bn"] == "none" else 0))
    t.out(side, stem)
    if values["bn"] == "post":
        _bn(t, side, stem)
        t.out(side, stem)
    channels = stem
    for size in model.widths:
        filters = _filters(values, size)
        entering = channels
        for _ in (1, 2):
            if values["bn"] == "none":
                t.out(side, channels)  # the unit's ReLU
                _conv(t, side, side, channels, filters, values["kernel"], values)
            else:
                _conv_unit(t, side, side, channels, filters, values["kernel"], values)
            channels = filters
        out = math.ceil(side / 2)
        t.out(out, filters)  # the pool
        if values["se"]:
            _se(t, out, filters)
        _shortcut(t, out, entering, filters, 2, values)
        t.out(out, filters)  # the addition
        side = out
    t.out(1, channels, 1 + 2 * (values["dropout"] > 0))
    t.weights(channels * num_classes + num_classes, "head")
    t.out(1, num_classes, 2)
    return ModelMemory(t.params, t.activations, t.parts.get("head", 0), values)


def count_keras_app(model: KerasAppModel, values: dict, input_shape: tuple[int, int, int], num_classes: int) -> ModelMemory:
    """Keras' own net, measured once built small (models/keras_apps.py): the one family counted by building."""
    from search.models.keras_apps import measured  # TensorFlow, for this family only

    every = measured(tuple(model.architecture), tuple(input_shape), num_classes, model.weights)  # one child process for all
    params, head, activations = every[values["architecture"]]
    return ModelMemory(params, activations + 3 * num_classes, head, values)


COUNTERS: dict[str, Callable[[Family, dict, tuple[int, int, int], int], ModelMemory]] = {
    VGGModel.name(): count_vgg,
    ResNetModel.name(): count_resnet,
    CellsModel.name(): count_cells,
    XceptionModel.name(): count_xception,
    KerasAppModel.name(): count_keras_app,
}

# The key that makes each family's nets smaller, and the axes that say how large a candidate is.
SIZE_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    VGGModel.name(): ("model.width", ("config", "width", "fc_units", "head")),
    ResNetModel.name(): ("model.width", ("depth", "width", "fc_units", "head")),
    CellsModel.name(): ("model.filters / model.cells_per_stage", ("filters", "cells_per_stage")),
    XceptionModel.name(): ("model.width", ("width", "kernel")),
    KerasAppModel.name(): ("model.architecture", ("architecture",)),
}
