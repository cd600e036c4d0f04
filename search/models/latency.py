"""What a trained candidate costs to run: median inference time on this machine, measured, not counted.

FLOPs predict time badly on a CPU (depthwise convolutions are bound by memory traffic, not arithmetic: the
conv_kind study measured 5.1x fewer FLOPs for 20% less time), so every trial times its model too: one
traced inference function, warmed up, then `calls` timed calls at batch 1 and at the training batch size.
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

WARMUP_CALLS = 2  # the first call traces the function; the second still pays for allocating buffers


def latency(model: keras.Model, images: np.ndarray, batch_size: int, calls: int) -> dict[str, float]:
    """`latency_ms` (median ms per call at batch 1) and `latency_batch_ms` (at `batch_size`, or as many
    images as there are), over `calls` timed calls each after the warm-up."""
    infer = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec([None, *images.shape[1:]], tf.float32)])
    batch = min(batch_size, len(images))
    return {
        "latency_ms": _median_ms(infer, tf.constant(images[:1], tf.float32), calls),
        "latency_batch_ms": _median_ms(infer, tf.constant(images[:batch], tf.float32), calls),
    }


def _median_ms(infer, inputs: tf.Tensor, calls: int) -> float:
    for _ in range(WARMUP_CALLS):
        infer(inputs).numpy()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        infer(inputs).numpy()  # .numpy() waits for the result: the call's whole time, not its dispatch
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)
