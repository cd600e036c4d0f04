"""Scale: trials per hour with 1 and 2 local workers (`archsearch run --workers N`), and the CPU threads
each worker's trials get, beside the same search run in one process.

    uv run python benchmarks/scale.py
"""

from __future__ import annotations

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

SPACE = """\
name: scale_benchmark
dataset: {name: digits, input_size: 16}
model: {family: resnet, depth: 14, width: 0.5, residual: [false, true], bn: [none, post, pre], kernel: [3, 5]}
training: {learning_rate: 0.02, batch_size: 64, epochs: 2}
search: {strategy: grid, seed: 1}
"""


def trials_per_hour(workers: int, folder: Path) -> tuple[float, int, float]:
    space_path = folder / f"space{workers}.yaml"
    space_path.write_text(SPACE)
    distribution = Distribution(local_workers=workers) if workers else None
    started = time.perf_counter()
    result = run_search(load_space(space_path), space_path, tracking_uri=f"sqlite:///{folder}/store{workers}/mlflow.db",
                        tuner_dir=folder / f"tuner{workers}", distribution=distribution)
    seconds = time.perf_counter() - started
    finished = int((result.trials["status"] == "FINISHED").sum())
    return finished / seconds * 3600, finished, seconds


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for workers in (0, 1, 2):
            rate, finished, seconds = trials_per_hour(workers, Path(folder))
            threads = Distribution(local_workers=workers).threads_per_worker() if workers else os.cpu_count()
            label = f"{workers} worker(s)" if workers else "in process"
            rows.append(f"{label}: {rate:.0f} trials/h ({finished} trials in {seconds:.0f} s, {threads} threads per trial)")
            print(rows[-1], flush=True)
    record("scale", "; ".join(rows), "12 trials, ResNet-14 at 16x16, 2 epochs, 1,438 images")


if __name__ == "__main__":
    main()
