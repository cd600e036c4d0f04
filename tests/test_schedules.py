"""Learning-rate schedules as the optimizer applies them, step by step: warm-up, then the space's schedule
on the epochs the space names."""

import math

import pytest
from conftest import TINY_SPACE, write

from search.engine.hypermodel import make_optimizer
from search.spec.reader import load_space

STEPS = 10  # per epoch
VALUES = {"learning_rate": 0.1, "optimizer": "sgd", "weight_decay": 0.0}


def rates(tmp_path, training: str, steps: list[int]) -> list[float]:
    space = load_space(write(tmp_path / "space.yaml", TINY_SPACE.replace("  epochs: 2\n", training)))
    optimizer = make_optimizer(VALUES, space, STEPS)
    seen = []
    for step in steps:
        optimizer.iterations.assign(step)
        seen.append(float(optimizer.learning_rate))
    return seen


def test_warmup_rises_linearly_then_the_step_schedule_divides_at_its_epochs(tmp_path):
    steps = [0, 9, 19, 20, 39, 40, 59, 60, 80]
    got = rates(tmp_path, "  epochs: 9\n  schedule: step\n  milestones: [4, 6]\n  warmup: 2\n", steps)
    assert got == pytest.approx([0.1 / 20, 0.1 / 2, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001], rel=1e-5)


def test_without_warmup_the_rate_starts_at_its_value(tmp_path):
    assert rates(tmp_path, "  epochs: 9\n  schedule: step\n  milestones: [4]\n", [0, 41]) == pytest.approx([0.1, 0.01], rel=1e-5)


def test_warmup_before_a_cosine_schedule_and_a_constant_rate(tmp_path):
    cosine = lambda step: 0.1 * (1 + math.cos(math.pi * step / (10 * STEPS))) / 2  # noqa: E731
    got = rates(tmp_path, "  epochs: 10\n  schedule: cosine\n  warmup: 1\n", [0, 4, 10, 50])
    assert got == pytest.approx([cosine(0) / 10, cosine(4) * 5 / 10, cosine(10), cosine(50)], rel=1e-5)
    assert rates(tmp_path, "  epochs: 3\n  warmup: 1\n", [4, 9, 10, 29]) == pytest.approx([0.05, 0.1, 0.1, 0.1], rel=1e-5)
