"""Architectures of keras.applications as baselines (the `keras_app` family).

Each is its convolutional base as Keras builds it for the space's input (`include_top=False`, global
average pooling), then dropout and a softmax layer for the space's classes: with random weights or with
ImageNet's, the same net. ImageNet weights are read from Keras' cache only (`$KERAS_HOME/models`, else
`~/.keras/models`): a search never downloads, and a missing file is refused by name before anything trains.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keras

from search.errors import WeightsError
from search.models import blocks
from search.spec.architectures import KERAS_APPS


def build_keras_app(*, input_shape: tuple[int, int, int], num_classes: int, architecture: str, dropout: float,
                    weights: str = "none", bn_momentum: float = 0.9) -> keras.Model:
    """The base of `architecture` for this input, dropout, softmax for `num_classes`. Every batch norm of the
    base gets `bn_momentum`: with Keras' 0.99 its moving averages are still far from the data's statistics
    after the few hundred steps of a small run, and the net then evaluates at chance."""
    if weights == "imagenet" and input_shape[-1] != 3:
        raise WeightsError(f"model.weights: imagenet weights take 3-channel images; this data has {input_shape[-1]}")
    application = getattr(keras.applications, architecture)
    with _cache_only() if weights == "imagenet" else contextlib.nullcontext():
        base = application(include_top=False, weights="imagenet" if weights == "imagenet" else None,
                           input_shape=input_shape, pooling="avg")
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = bn_momentum
    outputs = blocks.gap_head(base.output, num_classes, dropout, pooled=True)
    return keras.Model(base.input, outputs, name=architecture.lower())


@contextlib.contextmanager
def _cache_only() -> Iterator[None]:
    """Within: Keras' `get_file` answers from its cache or raises WeightsError naming the file; it never
    downloads (nor re-downloads a file whose hash differs: loading it then fails with Keras' own error)."""
    from keras.src.backend import config
    from keras.src.utils import file_utils

    original = file_utils.get_file

    def from_cache(fname=None, origin=None, cache_subdir="datasets", cache_dir=None, **_):
        name = fname or os.path.basename(origin)
        path = Path(os.path.expanduser(cache_dir or config.keras_home())) / cache_subdir / name
        if not path.is_file():
            raise WeightsError(f"model.weights: imagenet needs {name}, which is not in Keras' cache ({path}); "
                               f"download it from {origin} on a machine with a network and copy it there")
        return str(path)

    file_utils.get_file = from_cache
    try:
        yield
    finally:
        file_utils.get_file = original


@functools.lru_cache(maxsize=64)
def measured(architectures: tuple[str, ...], input_shape: tuple[int, int, int], num_classes: int, weights: str) -> dict:
    """Architecture -> (params, head params, activation elements per image) of each net, built at the
    architecture's smallest input with the space's channels and weights (so missing weights are refused
    here, before a search starts); the activations scaled to the space's side. The weights do not depend on
    the side, and these nets hold at most tens of millions of them. Built in one child process that sees no
    GPU: the process that checks a search's memory must not claim the GPU its trials train on."""
    arguments = json.dumps([list(architectures), list(input_shape), num_classes, weights])
    code = f"import json, sys; from search.models.keras_apps import _measure_all; print(json.dumps(_measure_all(*json.loads({arguments!r}))))"
    environment = os.environ | {"CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=900)
    answer = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    found = json.loads(answer)
    if "error" in found:
        raise WeightsError(found["error"])
    if done.returncode != 0 or set(found) != set(architectures):
        raise RuntimeError(f"measuring {', '.join(architectures)} failed: {done.stderr.strip()[-2000:]}")
    return {name: tuple(values) for name, values in found.items()}


def _measure_all(architectures: list[str], input_shape: list[int], num_classes: int, weights: str) -> dict:
    try:
        return {name: _measure(name, tuple(input_shape), num_classes, weights) for name in architectures}
    except WeightsError as error:
        return {"error": str(error)}


def _measure(architecture: str, input_shape: tuple[int, int, int], num_classes: int, weights: str) -> tuple[int, int, int]:
    side = KERAS_APPS[architecture]
    model = build_keras_app(input_shape=(side, side, input_shape[-1]), num_classes=num_classes, architecture=architecture,
                            dropout=0.0, weights=weights)
    elements = sum(_elements(layer.output) for layer in model.layers[1:])
    head = model.get_layer("predictions").count_params()
    params = model.count_params()
    keras.backend.clear_session(free_memory=True)
    return params, head, round(elements * (input_shape[0] * input_shape[1]) / (side * side))


def _elements(output) -> int:
    outputs = output if isinstance(output, (list, tuple)) else [output]
    total = 0
    for tensor in outputs:
        count = 1
        for size in tensor.shape[1:]:
            count *= size or 1
        total += count
    return total
