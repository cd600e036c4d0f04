"""Keras functional blocks with concrete arguments: the conv unit, the residual wrap, SE, LRN, heads.

Nothing here knows about KerasTuner; the builders in `search.models` call these with values the
hypermodel has already chosen. Layer names are passed in by the builders so that two trials' model
summaries diff cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops


@dataclass(frozen=True)
class Design:
    """One value of each axis every conv-net family shares (declared, with defaults, by the schema's
    `ConvNetModel`); a family's builder takes it whole, so a new shared axis is added here and where it acts."""

    bn: str
    conv: str
    kernel: int
    head: str
    width: float
    se: bool
    dropout: float
    fc_units: int
    bn_momentum: float

    @property
    def style(self) -> UnitStyle:
        return UnitStyle(conv=self.conv, bn=self.bn, bn_momentum=self.bn_momentum)

    def filters(self, filters: int) -> int:
        """Filters after the width multiplier (at least one)."""
        return max(1, round(filters * self.width))


@dataclass(frozen=True)
class UnitStyle:
    """How every conv unit of a net is built: the design axes that apply layer by layer."""

    conv: str = "dense"  # dense | separable
    bn: str = "post"  # none | post | pre
    bn_momentum: float = 0.9


def conv(x, filters: int, kernel: int, style: UnitStyle, name: str, strides: int = 1, force_dense: bool = False):
    """A bare convolution. Separable only where it means something (kernel > 1); a bias only when no
    batch-norm follows (Keras practice: BN's beta makes the bias redundant)."""
    use_bias = style.bn == "none"
    if style.conv == "separable" and kernel > 1 and not force_dense:
        return layers.SeparableConv2D(
            filters, kernel, strides=strides, padding="same", use_bias=use_bias, name=f"{name}_sepconv"
        )(x)
    if kernel == 1:
        return pointwise(x, filters, strides, use_bias, name)
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=use_bias, name=f"{name}_conv")(x)


def batch_norm(x, style: UnitStyle, name: str):
    return layers.BatchNormalization(momentum=style.bn_momentum, epsilon=1.001e-5, name=f"{name}_bn")(x)


def bn_relu(x, style: UnitStyle, name: str):
    """BN then ReLU, or ReLU alone when the net has no batch-norm."""
    if style.bn != "none":
        x = batch_norm(x, style, name)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def conv_unit(
    x,
    filters: int,
    kernel: int,
    style: UnitStyle,
    name: str,
    strides: int = 1,
    activate: bool = True,
    force_dense: bool = False,
):
    """conv -> BN -> ReLU (post), BN -> ReLU -> conv (pre), or conv -> ReLU (none).

    `activate=False` leaves a post/none unit un-activated, for the last unit of a residual branch,
    whose ReLU comes after the addition.
    """
    if style.bn == "pre":
        x = bn_relu(x, style, f"{name}_pre")
        return conv(x, filters, kernel, style, name, strides, force_dense)
    x = conv(x, filters, kernel, style, name, strides, force_dense)
    if style.bn == "post":
        x = batch_norm(x, style, name)
    if activate:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def pointwise(x, filters: int, strides: int, use_bias: bool, name: str):
    """A 1x1 conv, subsampling first when strided: the same function and weights as a strided 1x1 conv.
    oneDNN's kernel for the weight gradient of a strided 1x1 conv with fewer than 16 input channels writes
    past its buffer on odd batches (SIGSEGV or a glibc abort in the trial process; oneDNN's issue 6035);
    the unit-stride kernel has no such bug."""
    if strides > 1:
        x = layers.MaxPooling2D(1, strides=strides, padding="same", name=f"{name}_subsample")(x)
    return layers.Conv2D(filters, 1, use_bias=use_bias, name=f"{name}_conv")(x)


def shortcut(x, filters: int, strides: int, style: UnitStyle, name: str):
    """Identity when the shape is unchanged, else a 1x1 projection (He et al. option B)."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    x = pointwise(x, filters, strides, use_bias=style.bn == "none", name=f"{name}_shortcut")
    if style.bn == "post":
        x = batch_norm(x, style, f"{name}_shortcut")
    return x


def merge(branch, skip, style: UnitStyle, name: str, residual: bool, se: bool = False):
    """Close a block: SE on the branch, the residual add, and the post-add ReLU of the original order."""
    if se:
        branch = squeeze_excite(branch, name)
    if residual:
        branch = layers.Add(name=f"{name}_add")([skip, branch])
    if style.bn != "pre":
        branch = layers.Activation("relu", name=f"{name}_out")(branch)
    return branch


def basic_block(x, filters: int, kernel: int, strides: int, style: UnitStyle, name: str, residual: bool, se: bool):
    """ResNet's two-conv block. post: conv-BN-ReLU, conv-BN, add, ReLU (He et al. 2015); pre: BN-ReLU-conv
    twice, add, nothing after (He et al. 2016). `residual=False` keeps every layer but the addition."""
    if style.bn == "pre":
        pre = bn_relu(x, style, f"{name}_pre")
        skip = shortcut(pre, filters, strides, style, name) if residual else None
        if skip is not None and skip is pre:
            skip = x  # identity shortcuts carry the un-activated signal
        y = conv(pre, filters, kernel, style, f"{name}_1", strides)
        y = conv_unit(y, filters, kernel, style, f"{name}_2")
    else:
        skip = shortcut(x, filters, strides, style, name) if residual else None
        y = conv_unit(x, filters, kernel, style, f"{name}_1", strides)
        y = conv_unit(y, filters, kernel, style, f"{name}_2", activate=False)
    return merge(y, skip, style, name, residual, se)


def squeeze_excite(x, name: str, ratio: int = 16):
    """Hu et al. 2017: channel gates from globally pooled features."""
    channels = x.shape[-1]
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_squeeze")(x)
    gate = layers.Dense(max(1, channels // ratio), activation="relu", name=f"{name}_se_reduce")(gate)
    gate = layers.Dense(channels, activation="sigmoid", name=f"{name}_se_expand")(gate)
    return layers.Multiply(name=f"{name}_se_scale")([x, gate])


@keras.saving.register_keras_serializable(package="archsearch")
class LocalResponseNormalization(layers.Layer):
    """AlexNet's LRN across channels (k=2, n=5, alpha=1e-4, beta=0.75), used by VGG config A-LRN."""

    def __init__(self, depth_radius: int = 2, bias: float = 2.0, alpha: float = 1e-4, beta: float = 0.75, **kwargs):
        super().__init__(**kwargs)
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def call(self, x):
        channels = x.shape[-1]
        squared = ops.pad(ops.square(x), [[0, 0], [0, 0], [0, 0], [self.depth_radius, self.depth_radius]])
        window = sum(squared[..., i : i + channels] for i in range(2 * self.depth_radius + 1))
        return x / ops.power(self.bias + self.alpha * window, self.beta)

    def get_config(self):
        return super().get_config() | {
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def classifier_head(x, num_classes: int, design: Design):
    """`fc`: the VGG paper's flatten + two FC layers with dropout; `gap`: global average pooling."""
    head, fc_units, dropout = design.head, design.fc_units, design.dropout
    if head == "fc":
        x = layers.Flatten(name="flatten")(x)
        for i in (1, 2):
            x = layers.Dense(fc_units, activation="relu", name=f"fc{i}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    elif head == "gap":
        return gap_head(x, num_classes, dropout)
    else:
        raise ValueError(f"unknown head {head!r}; expected 'fc' or 'gap'")
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def gap_head(x, num_classes: int, dropout: float, pooled: bool = False):
    """Global average pooling (unless `pooled` already), dropout, softmax."""
    if not pooled:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)
