"""Zero-cost proxies, checked against the closed forms they take on nets small enough to write out."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from search.models.proxies import JACOB_COV_K, PROXIES, score
from search.models.registry import build_model


def _linear_net(hidden: int | None, seed: int = 0) -> keras.Model:
    """Input 5 -> [Dense(hidden), no bias] -> Dense(3, softmax) named as every family's head."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    x = keras.layers.Dense(hidden, use_bias=False, name="hidden")(inputs) if hidden else inputs
    outputs = keras.layers.Dense(3, activation="softmax", use_bias=False, name="predictions")(x)
    return keras.Model(inputs, outputs)


def _batch(n: int = 8, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)).astype("float32"), rng.integers(0, 3, n)


def _softmax_gradient(model, x, y):
    """d(mean cross-entropy)/dW of a single dense softmax layer: x^T (p - onehot) / n."""
    w = model.get_layer("predictions").kernel.numpy()
    z = x @ w
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return w, x.T @ (p - np.eye(3)[y]) / len(x)


def test_synflow_is_the_synaptic_flow_of_the_absolute_weights():
    # with no biases and no nonlinearity, R = 1^T |W1| |W2| 1 is homogeneous of degree 1 in each layer,
    # so the sum of theta * dR/dtheta over both layers is 2R
    model = _linear_net(hidden=4)
    w1, w2 = (np.abs(model.get_layer(n).kernel.numpy()).astype(np.float64) for n in ("hidden", "predictions"))
    flow = np.ones(5) @ w1 @ w2 @ np.ones(3)
    assert score(model, "synflow", *_batch()) == pytest.approx(2 * flow, rel=1e-9)


def test_snip_and_grad_norm_read_the_loss_gradient_of_the_kernels():
    model = _linear_net(hidden=None)
    x, y = _batch()
    w, g = _softmax_gradient(model, x, y)
    assert score(model, "snip", x, y) == pytest.approx(np.abs(w * g).sum(), rel=1e-4)
    assert score(model, "grad_norm", x, y) == pytest.approx(np.linalg.norm(g), rel=1e-4)


def test_jacob_cov_penalises_inputs_whose_jacobians_are_all_alike():
    # a linear net has one Jacobian for every image: the correlation matrix is all ones, eigenvalues n, 0, ...
    model = _linear_net(hidden=4)
    x, y = _batch(n=8)
    eigenvalues = np.array([8.0] + [0.0] * 7)
    expected = -np.sum(np.log(eigenvalues + JACOB_COV_K) + 1 / (eigenvalues + JACOB_COV_K))
    assert score(model, "jacob_cov", x, y) == pytest.approx(expected, rel=1e-3)
    # a net whose Jacobian depends on the image (ReLUs) scores far higher
    relu = build_model("resnet", input_shape=(8, 8, 1), num_classes=3, depth=8, residual=True, width=0.25)
    images = np.random.default_rng(2).normal(size=(8, 8, 8, 1)).astype("float32")
    assert score(relu, "jacob_cov", images, y) > expected / 1000


def test_every_proxy_scores_a_built_candidate_and_leaves_its_state_as_it_was():
    model = build_model("resnet", input_shape=(8, 8, 1), num_classes=3, depth=8, residual=True, width=0.25, bn="post")
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 8, 8, 1)).astype("float32"), rng.integers(0, 3, 16)
    before = [w.numpy().copy() for w in model.weights]
    scores = {proxy: score(model, proxy, x, y) for proxy in PROXIES}
    assert all(np.isfinite(list(scores.values()))), scores
    assert scores["params"] == model.count_params()
    assert scores["synflow"] > 0 and scores["grad_norm"] > 0 and scores["snip"] > 0
    # training-mode passes moved the batch-norm statistics; score puts them back
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))


def test_the_proxy_names_the_cli_knows_are_the_proxies_there_are():
    from search.spec.metrics import PROXIES as NAMES

    assert tuple(PROXIES) == NAMES


def test_plan_ranks_the_candidates_by_a_proxy_reproducibly_and_refuses_an_unknown_one(tmp_path):
    from conftest import TINY_SPACE, write
    from typer.testing import CliRunner

    from search.cli import app
    from search.orchestration.plan import plan_candidates
    from search.spec.reader import load_space

    three = TINY_SPACE.replace("width: 0.5", "width: [0.25, 0.5, 1.0]").replace("residual: [false, true]", "residual: true")
    space = load_space(write(tmp_path / "s.yaml", three))
    by_params, note = plan_candidates(space, score="params")
    assert "ranked by params" in note and len(by_params) == 3
    assert by_params["params"].is_monotonic_decreasing and by_params["width"].iloc[0] == 1.0, "the widest first"
    first, _ = plan_candidates(space, score="synflow")
    again, _ = plan_candidates(space, score="synflow")
    assert first["synflow"].tolist() == again["synflow"].tolist(), "each candidate seeded by the search's seed"
    assert first["synflow"].is_monotonic_decreasing and (first["synflow"] > 0).all()
    assert first["synflow"].nunique() == 3, "the candidates score differently"

    result = CliRunner().invoke(app, ["plan", str(tmp_path / "s.yaml"), "--score", "accuracy"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "not a proxy; known: synflow, jacob_cov" in result.output
    assert "Traceback" not in result.output
