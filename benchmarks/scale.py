"""Scale: trials per hour with 1 and 2 local workers (`archsearch run --workers N`), and the CPU threads
each worker's trials get, beside the same search run in one process; for a grid and a random search.

A worker gets cores / N threads, so on 2 cores two workers each train with one thread: what two workers gain
is what two one-thread trainings at once do over one two-thread training, minus the second worker's start.
The grid's figure is the one that shows whether a free worker is handed the next combination at once
(KerasTuner's grid made it wait for a trial to end).

    uv run python benchmarks/scale.py [--strategies grid,random]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from results import record  # noqa: E402

from search.distributed.distribution import Distribution  # noqa: E402
from search.orchestration.run import run_search  # noqa: E402
from search.spec.reader import load_space  # noqa: E402

TRIALS = 12
SPACE = """\
name: scale_benchmark_{strategy}
dataset: {{name: digits, input_size: 16}}
model: {{family: resnet, depth: 14, width: 0.5, residual: [false, true], bn: [none, post, pre], kernel: [3, 5]}}
training: {{learning_rate: 0.02, batch_size: 64, epochs: 2}}
search: {{strategy: {strategy}, seed: 1, max_trials: {trials}}}
"""


def trials_per_hour(strategy: str, workers: int, folder: Path) -> tuple[float, int, float]:
    space_path = folder / f"{strategy}{workers}.yaml"
    space_path.write_text(SPACE.format(strategy=strategy, trials=TRIALS))
    distribution = Distribution(local_workers=workers) if workers else None
    started = time.perf_counter()
    result = run_search(load_space(space_path), space_path, tracking_uri=f"sqlite:///{folder}/store-{strategy}{workers}/mlflow.db",
                        tuner_dir=folder / f"tuner-{strategy}{workers}", distribution=distribution)
    seconds = time.perf_counter() - started
    finished = int((result.trials["status"] == "FINISHED").sum())
    return finished / seconds * 3600, finished, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="grid,random")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for strategy in args.strategies.split(","):
            for workers in (0, 1, 2):
                rate, finished, seconds = trials_per_hour(strategy, workers, Path(folder))
                threads = Distribution(local_workers=workers).threads_per_worker() if workers else os.cpu_count()
                label = f"{strategy} {f'with {workers} worker(s)' if workers else 'in process'}"
                rows.append(f"{label}: {rate:.0f} trials/h ({finished} trials in {seconds:.0f} s, {threads} threads per trial)")
                print(rows[-1], flush=True)
    record("scale", "; ".join(rows), f"{TRIALS} trials, ResNet-14 at 16x16, 2 epochs, 1,438 images")


if __name__ == "__main__":
    main()
