"""What a zero-cost proxy costs per candidate at 32x32 on this machine's CPU (goal: under a second each), as a
ratio to what it stands in for: one epoch of training the same candidate on 10,000 images (79 steps of 128,
timed over 10 steps after a warm-up and scaled).

Candidates: ResNet-20 at half width (69k parameters) and a NASNet-style cell net (N=1, F=16, random cells of
a fixed seed), scored on 64 images as `archsearch plan --score` does; each proxy's time is the median of 3
calls on a freshly built model.

    uv run python benchmarks/proxies.py
"""

from __future__ import annotations

import random
import statistics
import sys
import time

import keras
import numpy as np
from results import record

from search.models.proxies import PROXIES, score
from search.models.registry import build_model
from search.spec.families import CellsModel

SHAPE, CLASSES, BATCH, CALLS = (32, 32, 3), 10, 64, 3
EPOCH_STEPS, TIMED_STEPS = 79, 10


def candidates() -> dict[str, keras.Model]:
    cells = CellsModel(family="cells", stages=3, cells_per_stage=[1], filters=[16])
    genotype = cells.sample_structure(random.Random(1))["genotype"]
    return {
        "ResNet-20 x0.5": lambda: build_model("resnet", input_shape=SHAPE, num_classes=CLASSES, depth=20, width=0.5),
        "cells N=1 F=16": lambda: build_model("cells", input_shape=SHAPE, num_classes=CLASSES, genotype=genotype, cells_per_stage=1, filters=16, stages=3),
    }


def epoch_seconds(model: keras.Model, x, y) -> float:
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    big_x, big_y = np.repeat(x, 2, axis=0), np.repeat(y, 2)  # one batch of 128
    model.train_on_batch(big_x, big_y)
    started = time.perf_counter()
    for _ in range(TIMED_STEPS):
        model.train_on_batch(big_x, big_y)
    return (time.perf_counter() - started) / TIMED_STEPS * EPOCH_STEPS


def main() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(BATCH, *SHAPE)).astype("float32"), rng.integers(0, CLASSES, BATCH)
    figures, worst = [], 0.0
    for name, build in candidates().items():
        times = {}
        for proxy in PROXIES:
            calls = []
            for _ in range(CALLS):
                keras.backend.clear_session()
                model = build()
                started = time.perf_counter()
                score(model, proxy, x, y)
                calls.append(time.perf_counter() - started)
            times[proxy] = statistics.median(calls)
        keras.backend.clear_session()
        epoch = epoch_seconds(build(), x, y)
        worst = max(worst, *times.values())
        listed = ", ".join(f"{proxy} {seconds:.2f} s ({seconds / epoch:.3f})" for proxy, seconds in times.items())
        figures.append(f"{name}: {listed}; one epoch of 10,000 images {epoch:.1f} s")
        print(figures[-1], flush=True)
    record("zero-cost proxies", "seconds per candidate (÷ one training epoch): " + "; ".join(figures) + " (goal: each < 1 s)",
           f"32x32x3, {BATCH} images, median of {CALLS} freshly built models", ("tensorflow", "keras"))
    sys.exit(0 if worst < 1.0 else 1)


if __name__ == "__main__":
    main()
