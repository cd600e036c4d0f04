"""`archsearch compare` on a large store: 2,500 / 5,000 / 10,000 trial runs (goal: under 3 s at 10,000,
and time growing no faster than the number of runs).

Fills sqlite MLflow stores through MlflowClient with runs shaped like real trials (their params, final
metrics and tags; no per-epoch curves, which compare does not read), then times the library call that
`compare` makes (read runs, aggregate, render Markdown) and the whole command in a fresh process.
Prints the figures and appends them to benchmarks/RESULTS.md.

    uv run python benchmarks/compare_speed.py
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from results import record  # noqa: E402

from search.orchestration.report import load_comparison  # noqa: E402
from search.reporting.tables import render  # noqa: E402
from search.tracking.tags import PARENT_TAG, ROLE_TAG, TRIAL_ROLE, VARYING_TAG  # noqa: E402

SIZES = (2_500, 5_000, 10_000)
SETTINGS = {
    "space": "bench", "family": "resnet", "dataset": "digits", "dataset_path": "", "input_size": 32,
    "validation_split": 0.2, "subset": None, "flip": False, "crop_padding": 0, "noise": 0.0, "momentum": 0.9,
    "schedule": "constant", "milestones": [], "plateau_patience": 3, "epochs": 6, "early_stopping": None,
    "strategy": "grid", "objective": "val_accuracy", "max_trials": None, "repeats": 1,
    "hyperband_factor": 3, "max_params": None, "bn": "post", "conv": "dense", "kernel": 3, "head": "gap",
    "width": 1.0, "se": False, "dropout": 0.0, "fc_units": 4096, "bn_momentum": 0.9, "optimizer": "sgd",
    "learning_rate": 0.05, "weight_decay": 0.0, "batch_size": 64, "train_samples": 1438,
    "validation_samples": 359, "num_classes": 10, "data_hash": "0123456789abcdef",
}


def fill(uri: str, runs: int) -> None:
    client = MlflowClient(uri)
    experiment = client.create_experiment("bench")
    rng = random.Random(runs)
    parent = client.create_run(experiment, run_name="bench", tags={ROLE_TAG: "search"}).info.run_id
    now = int(time.time() * 1000)
    for i in range(runs):
        depth, residual, seed = (20, 32, 44, 56)[i % 4], bool(i // 4 % 2), i // 8 + 1
        tags = {ROLE_TAG: TRIAL_ROLE, PARENT_TAG: parent, VARYING_TAG: "depth,residual", "seed": str(seed),
                "space_hash": "f" * 64, "git_commit": "0" * 40, "version.tensorflow": "2.21.0"}
        run = client.create_run(experiment, run_name=f"trial-{i}", tags=tags).info.run_id
        params = SETTINGS | {"depth": depth, "residual": residual, "seed": seed, "trial_id": str(i)}
        value = rng.random()
        metrics = {"loss": value, "accuracy": value, "val_loss": value, "val_accuracy": value,
                   "best_val_accuracy": value, "params": 270_000.0 * depth / 20, "mult_adds": 4e7, "flops": 8e7,
                   "train_seconds": 20.0, "trial_seconds": 21.0, "epochs_run": 6.0}
        client.log_batch(run, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                         params=[Param(k, str(v)) for k, v in params.items()])
        client.set_terminated(run, "FINISHED")


def time_library(uri: str) -> float:
    started = time.perf_counter()
    comparison, _ = load_comparison(uri, ["bench"])
    render(comparison, "markdown")
    assert comparison.table["n"].sum() > 0
    return time.perf_counter() - started


def time_command(uri: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "search.cli", "compare", "bench", "--tracking-uri", uri],
                   check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in SIZES:
            uri = f"sqlite:///{folder}/store{size}.db"
            started = time.perf_counter()
            fill(uri, size)
            filled = time.perf_counter() - started
            library = min(time_library(uri) for _ in range(3))
            command = min(time_command(uri) for _ in range(2))
            rows.append((size, library, command))
            print(f"{size:>6} runs: filled in {filled:.0f} s; compare library {library:.2f} s, command {command:.2f} s", flush=True)
    (small, small_lib, _), (large, large_lib, large_cmd) = rows[0], rows[-1]
    growth = (large_lib / small_lib) / (large / small)
    record(
        "compare speed",
        ", ".join(f"{n:,} runs: {lib:.2f} s library / {cmd:.2f} s command" for n, lib, cmd in rows)
        + f"; time ratio {large:,}/{small:,} runs ÷ size ratio = {growth:.2f} (1.0 = linear; goal: command under 3 s)",
        "sqlite store",
        ("mlflow", "pandas"),
    )
    sys.exit(0 if large_cmd < 3 else 1)


if __name__ == "__main__":
    main()
