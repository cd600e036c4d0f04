"""Trials per hour with local workers: `archsearch run --workers N` for a grid and a random search, with 1 and
2 workers, each as a ratio to the same strategy with 1 worker measured in the same run.

A worker gets cores / N CPU threads, so on 2 cores two workers each train with one thread: what two workers
gain is what two one-thread trainings at once do over one two-thread training, minus the chief's and the
second worker's start-up. Before grid search handed each worker its next combination at once, a second
worker idled while the first trained; the grid's figure is the one that shows it.

    uv run python benchmarks/workers.py [--trials 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from results import record  # noqa: E402

SPACE = """\
name: workers_benchmark
dataset: {{name: digits, input_size: 16}}
model: {{family: resnet, depth: 8, width: [0.25, 0.5], residual: [false, true], bn: [none, post]}}
training: {{learning_rate: 0.05, batch_size: 64, epochs: 2}}
search: {{strategy: {strategy}, seed: 1, max_trials: {trials}}}
tracking: {{latency_calls: 0}}
"""


def trials_per_hour(strategy: str, workers: int, trials: int, folder: Path) -> float:
    """Trials per hour of one whole `archsearch run` (start to exit, every trial finished)."""
    folder.mkdir(parents=True)
    space = folder / "space.yaml"
    space.write_text(SPACE.format(strategy=strategy, trials=trials))
    command = [sys.executable, "-m", "search.cli", "run", str(space), "--workers", str(workers),
               "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}", "--tuner-dir", str(folder / "tuner")]
    started = time.perf_counter()
    with open(folder / "run.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    return trials * 3600 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    rates = {}
    with tempfile.TemporaryDirectory() as temporary:
        for strategy in ("grid", "random"):
            for workers in (1, 2):
                rates[strategy, workers] = trials_per_hour(strategy, workers, args.trials, Path(temporary) / f"{strategy}-{workers}")
                print(f"{strategy} with {workers} worker(s): {rates[strategy, workers]:.0f} trials per hour", flush=True)
    figures = "; ".join(f"{strategy}: 1 worker {rates[strategy, 1]:.0f}, 2 workers {rates[strategy, 2]:.0f} trials per hour "
                        f"(x{rates[strategy, 2] / rates[strategy, 1]:.2f})" for strategy in ("grid", "random"))
    record("local workers", figures, f"`run --workers N`, {args.trials} trials of ResNet-8 on 16x16 digits, 2 epochs, "
           "whole command start to exit, workers with cores / N threads each")


if __name__ == "__main__":
    main()
