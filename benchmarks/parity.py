"""Model parity: training-step throughput of archsearch's VGG-D ÷ keras.applications.VGG16 (goal >= 0.98).

The same architecture (the tests check the weight shapes match layer for layer at 224x224): both built
at the same input and batch, trained with the same optimizer, timed over the same number of steps after a
warm-up, alternating the two so that drift on the machine falls on both.

    uv run python benchmarks/parity.py [--size 64] [--batch 8] [--steps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from results import record  # noqa: E402

from search.engine.quiet import import_tensorflow_quietly  # noqa: E402

tf = import_tensorflow_quietly()
import keras  # noqa: E402
import numpy as np  # noqa: E402

from search.models.registry import build_model  # noqa: E402


def steps_per_second(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    shape = (args.size, args.size, 3)
    keras.utils.set_random_seed(1)
    ours = build_model("vgg", input_shape=shape, num_classes=1000, config="D", head="fc", bn="none", width=1.0)
    theirs = keras.applications.VGG16(weights=None, input_shape=shape, classes=1000)
    assert ours.count_params() == theirs.count_params(), (ours.count_params(), theirs.count_params())
    for model in (ours, theirs):
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, *shape)).astype("float32")
    y = rng.integers(0, 1000, size=(args.batch,))
    for model in (ours, theirs):
        steps_per_second(model, x, y, 3)  # trace and warm up
    ours_rates, theirs_rates = [], []
    for _ in range(args.rounds):
        ours_rates.append(steps_per_second(ours, x, y, args.steps))
        theirs_rates.append(steps_per_second(theirs, x, y, args.steps))
    ratio = statistics.median(ours_rates) / statistics.median(theirs_rates)
    record("model parity", f"VGG-D {statistics.median(ours_rates):.2f} steps/s ÷ keras.applications.VGG16 "
           f"{statistics.median(theirs_rates):.2f} steps/s = {ratio:.3f} (goal >= 0.98); {ours.count_params():,} parameters each",
           f"{args.size}x{args.size}x3, batch {args.batch}, {args.rounds} x {args.steps} steps, median", ("tensorflow", "keras"))
    sys.exit(0 if ratio >= 0.98 else 1)


if __name__ == "__main__":
    main()
