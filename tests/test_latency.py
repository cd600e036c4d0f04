"""Measured inference time of a built model: batch 1 and the training batch, medians after a warm-up."""

import keras
import numpy as np

from search.models.latency import latency


def conv_net(width: int) -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for _ in range(4):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


def test_a_larger_batch_and_a_wider_net_take_longer_and_the_weights_stay_as_they_were():
    images = np.random.default_rng(0).normal(size=(64, 32, 32, 3)).astype("float32")
    narrow, wide = conv_net(8), conv_net(64)
    before = [w.copy() for w in wide.get_weights()]
    small, large = latency(narrow, images, batch_size=64, calls=5), latency(wide, images, batch_size=64, calls=5)
    # 64 images against 1, and 64 channels against 8 (about 60 times the multiply-adds): far more than timing noise
    assert 0 < small["latency_ms"] < small["latency_batch_ms"]
    assert large["latency_batch_ms"] > 3 * small["latency_batch_ms"]
    assert all(np.array_equal(a, b) for a, b in zip(before, wide.get_weights(), strict=True))

