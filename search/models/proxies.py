"""Zero-cost proxies: a score of an untrained candidate from one batch, to rank candidates before training.

Each follows the reference implementation of Abdelfattah et al. (2021, "Zero-Cost Proxies for Lightweight
NAS"), where the scores were compared on NAS-Bench-201: `grad_norm` (the sum of the weight gradients'
norms), `snip` (Lee et al. 2019: the sum of |weight x gradient|), `synflow` (Tanaka et al. 2020: the
synaptic flow of the net with absolute weights on an all-ones input, data-free, in float64 because it
grows with depth past float32), `jacob_cov` (Mellor et al. 2021: how uncorrelated the input Jacobians of
a batch's images are). `params` and `flops` are the baselines they must beat. Higher is better for all.

Scores are taken on the logits (the `predictions` layer without its softmax, whose outputs always sum to
one) and on the kernels of the conv and dense layers, as the reference does. The model is left as it
was: the batch-norm statistics a training-mode pass moves are put back.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from search.models.costs import model_costs

BATCH = 64  # the training images a candidate is scored on: the first of the training part (the reference's batch)
HEAD = "predictions"  # the dense softmax layer every family ends with
JACOB_COV_K = 1e-5  # the reference's regulariser of the correlation eigenvalues


def logits(model: keras.Model, x, *, training: bool):
    """The inputs of the final softmax: the head's dense layer applied without its activation."""
    head = model.get_layer(HEAD)
    features = keras.Model(model.inputs[0], head.input)(x, training=training)
    out = tf.matmul(features, head.kernel)
    return out + head.bias if head.use_bias else out


def kernels(model: keras.Model) -> list:
    """The conv and dense weights (kernels, depthwise and pointwise kernels): not biases, not BN."""
    return [w for w in model.trainable_weights if w.path.rsplit("/", 1)[-1].endswith("kernel")]


def _loss_gradients(model: keras.Model, x, y) -> tuple[list, list]:
    weights = kernels(model)
    with tf.GradientTape() as tape:
        out = logits(model, x, training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, out, from_logits=True))
    return weights, tape.gradient(loss, weights)


def grad_norm(model: keras.Model, x, y) -> float:
    weights, grads = _loss_gradients(model, x, y)
    return float(sum(tf.norm(g) for g in grads if g is not None))


def snip(model: keras.Model, x, y) -> float:
    weights, grads = _loss_gradients(model, x, y)
    return float(sum(tf.reduce_sum(tf.abs(w * g)) for w, g in zip(weights, grads) if g is not None))


def jacob_cov(model: keras.Model, x, y) -> float:
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(logits(model, x, training=True))
    jacobians = tape.gradient(total, x).numpy().reshape(len(x), -1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlations = np.corrcoef(jacobians)
    if not np.isfinite(correlations).all():  # a Jacobian that overflowed or is constant: no score
        return float("nan")
    eigenvalues = np.linalg.eigvalsh(correlations)
    return float(-np.sum(np.log(eigenvalues + JACOB_COV_K) + 1.0 / (eigenvalues + JACOB_COV_K)))


def synflow(model: keras.Model, x, y) -> float:
    linear = _float64_copy(model)
    for copy, weight in zip(linear.weights, model.weights):
        copy.assign(np.abs(weight.numpy()).astype(np.float64))
    weights = kernels(linear)
    ones = tf.ones((1, *model.input_shape[1:]), dtype=tf.float64)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(logits(linear, ones, training=False))
    grads = tape.gradient(total, weights)
    return float(sum(tf.reduce_sum(w * g) for w, g in zip(weights, grads) if g is not None))


def _float64_copy(model: keras.Model) -> keras.Model:
    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})

    inputs = keras.Input(model.input_shape[1:], dtype="float64")
    return keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)


def params(model: keras.Model, x, y) -> float:
    return float(model_costs(model)["params"])


def flops(model: keras.Model, x, y) -> float:
    return float(model_costs(model)["flops"])


PROXIES: dict[str, Callable[[keras.Model, np.ndarray, np.ndarray], float]] = {
    "synflow": synflow, "jacob_cov": jacob_cov, "grad_norm": grad_norm, "snip": snip, "params": params, "flops": flops,
}


def score(model: keras.Model, proxy: str, x: np.ndarray, y: np.ndarray) -> float:
    """`proxy`'s score of `model` on one batch (`x`, `y`); the model's state is unchanged afterwards."""
    state = [v.numpy() for v in model.non_trainable_weights]
    try:
        return PROXIES[proxy](model, x, y)
    finally:
        for variable, value in zip(model.non_trainable_weights, state):
            variable.assign(value)


def seeded_build(build: Callable[[], keras.Model], seed: int) -> keras.Model:
    """A fresh candidate whose initialisation `seed` fixes: scored wherever it is (`plan --score`, a
    prescreen, the trial's `proxy_score`), the same candidate gets the same score."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    return build()
