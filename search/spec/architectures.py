"""Architectures as data: the published tables, with no framework import.

The space-file validator reads these tables (to know which depths exist and how small an input each
net can take) without paying for a TensorFlow import; the builders in `search.models` read the same
tables to build the layers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VGGConv:
    """One conv layer of a VGG column. `pointwise` marks config C's 1x1 convs, which stay 1x1 whatever
    the space's `kernel` axis says; every other conv takes the `kernel` axis (3 in the paper)."""

    filters: int
    pointwise: bool = False


def _stage(filters: int, n: int, pointwise_last: bool = False) -> tuple[VGGConv, ...]:
    convs = [VGGConv(filters) for _ in range(n)]
    if pointwise_last:
        convs.append(VGGConv(filters, pointwise=True))
    return tuple(convs)


# Simonyan & Zisserman 2014, Table 1: five stages, each closed by a 2x2 max-pool.
VGG_CONFIGS: dict[str, tuple[tuple[VGGConv, ...], ...]] = {
    "A": (_stage(64, 1), _stage(128, 1), _stage(256, 2), _stage(512, 2), _stage(512, 2)),
    "A-LRN": (_stage(64, 1), _stage(128, 1), _stage(256, 2), _stage(512, 2), _stage(512, 2)),
    "B": (_stage(64, 2), _stage(128, 2), _stage(256, 2), _stage(512, 2), _stage(512, 2)),
    "C": (
        _stage(64, 2),
        _stage(128, 2),
        _stage(256, 2, pointwise_last=True),
        _stage(512, 2, pointwise_last=True),
        _stage(512, 2, pointwise_last=True),
    ),
    "D": (_stage(64, 2), _stage(128, 2), _stage(256, 3), _stage(512, 3), _stage(512, 3)),
    "E": (_stage(64, 2), _stage(128, 2), _stage(256, 4), _stage(512, 4), _stage(512, 4)),
}
VGG_LRN_CONFIGS = frozenset({"A-LRN"})  # LRN after the first conv layer


@dataclass(frozen=True)
class ResNetLayout:
    """Stage depths and widths of one ResNet; `imagenet` selects the 7x7/2 stem with max-pool."""

    blocks: tuple[int, ...]
    filters: tuple[int, ...]
    imagenet: bool


# He et al. 2015: ImageNet-style nets with basic blocks (Table 1).
RESNET_IMAGENET = {
    18: ResNetLayout((2, 2, 2, 2), (64, 128, 256, 512), imagenet=True),
    34: ResNetLayout((3, 4, 6, 3), (64, 128, 256, 512), imagenet=True),
}
CIFAR_FILTERS = (16, 32, 64)
MAX_RESNET_DEPTH = 1202  # the deepest net He et al. 2015 trained (CIFAR-10, n = 200); a deeper one is a typo or an attack


def resnet_layout(depth: int) -> ResNetLayout:
    """18 and 34 are the ImageNet nets; any other depth must be CIFAR-style 6n+2 (20, 32, 44, 56, 110), up to 1202."""
    if depth > MAX_RESNET_DEPTH:
        raise ValueError(f"ResNet depth {_digits(depth)} is more than {MAX_RESNET_DEPTH}, the deepest of He et al. 2015")
    if depth in RESNET_IMAGENET:
        return RESNET_IMAGENET[depth]
    if depth >= 8 and (depth - 2) % 6 == 0:
        n = (depth - 2) // 6
        return ResNetLayout((n, n, n), CIFAR_FILTERS, imagenet=False)
    raise ValueError(f"ResNet depth {_digits(depth)} is neither 18/34 nor 6n+2 (8, 14, 20, 32, 44, 56, 110, ... {MAX_RESNET_DEPTH})")


def _digits(number: int) -> str:
    """A number for a one-line message: an 80-digit one is shown by its length."""
    text = str(number)
    return text if len(text) <= 20 else f"{text[:8]}... ({len(text)} digits)"


def vgg_min_input(config: str) -> int:
    """The smallest square input that survives the net's five 2x2 max-pools (each halves the side)."""
    return 2 ** len(VGG_CONFIGS[config])


def resnet_min_input(depth: int) -> int:
    """Each later stage halves the side; the ImageNet stem halves it twice more."""
    layout = resnet_layout(depth)
    return 2 ** (len(layout.blocks) - 1 + (2 if layout.imagenet else 0))


def cells_min_input(stages: int) -> int:
    """A reduction cell between two stages halves the side."""
    return 2 ** (stages - 1)


# Chollet's Xception-style net ("Deep Learning with Python", the modern-convnet chapter): one stage per width.
XCEPTION_WIDTHS = (32, 64, 128, 256, 512)
XCEPTION_STEM_KERNEL = 5  # a 5x5 conv without padding


def xception_min_input() -> int:
    """The stem's unpadded 5x5 conv needs 5 pixels; the stages' padded pools take any side after it."""
    return XCEPTION_STEM_KERNEL


# keras.applications built by the `keras_app` family: the smallest square input each accepts (Keras'
# `min_size`; weights or not).
KERAS_APPS = {
    "ResNet50": 32, "ResNet50V2": 32, "ResNet101": 32, "Xception": 71, "InceptionV3": 75, "InceptionResNetV2": 75,
    "MobileNet": 32, "MobileNetV2": 32, "EfficientNetB0": 32, "DenseNet121": 32, "NASNetMobile": 32, "VGG16": 32,
    "VGG19": 32, "ConvNeXtTiny": 32,
}
