"""What a candidate costs before it trains: parameters and multiply-adds, read off the built model.

Mult-adds count the convolutions and dense layers (the MobileNet / NASNet convention); `flops` is
twice that (one multiply and one add), the convention of TensorFlow's profiler.
"""

from __future__ import annotations

import math

import keras


def mult_adds(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass of one image."""
    total = 0
    for layer in model.layers:
        total += _layer_mult_adds(layer)
    return total


def _layer_mult_adds(layer) -> int:
    if isinstance(layer, keras.layers.SeparableConv2D):
        out_h, out_w, out_c = layer.output.shape[1:]
        in_c = layer.input.shape[-1] * layer.depth_multiplier
        kh, kw = layer.kernel_size
        return out_h * out_w * (kh * kw * in_c + in_c * out_c)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out_h, out_w, out_c = layer.output.shape[1:]
        kh, kw = layer.kernel_size
        return out_h * out_w * out_c * kh * kw
    if isinstance(layer, keras.layers.Conv2D):
        out_h, out_w, out_c = layer.output.shape[1:]
        kh, kw = layer.kernel_size
        return out_h * out_w * out_c * kh * kw * layer.input.shape[-1] // layer.groups
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(layer.input.shape[1:-1])
        return positions * layer.input.shape[-1] * layer.units
    return 0


def model_costs(model: keras.Model) -> dict[str, int]:
    """The numbers logged with every trial and printed by `archsearch plan`."""
    macs = mult_adds(model)
    return {"params": model.count_params(), "mult_adds": macs, "flops": 2 * macs}
