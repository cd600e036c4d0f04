"""Memory across a long search: resident set size after trial 30 / after trial 5 (goal <= 1.10).

Runs a real 30-trial grid search (ResNet-8 on 300 embedded digits at 8x8, one epoch each) into a
temporary MLflow store, reading RSS from /proc after every trial: of the search process, and of the
search with its trial process (which is kept from trial to trial until it has grown too much). Prints
the figures and appends them to benchmarks/RESULTS.md with the machine and library versions.

    uv run python benchmarks/memory.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from results import record  # noqa: E402

from search.orchestration.run import run_search  # noqa: E402
from search.reporting.progress import TrialObserver  # noqa: E402
from search.spec.reader import load_space  # noqa: E402

TRIALS = 30
SPACE = f"""\
name: memory_benchmark
dataset: {{name: digits, input_size: 8, subset: 300}}
model: {{family: resnet, depth: 8, width: 0.5}}
training:
  learning_rate: {[round(0.01 + 0.002 * i, 4) for i in range(TRIALS)]}
  batch_size: 32
  epochs: 1
search: {{strategy: grid, seed: 1}}
"""


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def trial_processes_mib() -> float:
    """The trial processes are the children of this process's child, the server they are forked from."""
    return sum(rss_mib(trial) for server in children(os.getpid()) for trial in children(server))


class RssRecorder(TrialObserver):
    def __init__(self):
        self.after_trial: list[float] = []
        self.with_trial_process: list[float] = []

    def trial_end(self, trial_id, status, metrics, reason=""):
        self.after_trial.append(rss_mib())
        self.with_trial_process.append(self.after_trial[-1] + trial_processes_mib())


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        space_path = Path(folder) / "space.yaml"
        space_path.write_text(SPACE)
        recorder = RssRecorder()
        started = time.perf_counter()
        run_search(
            load_space(space_path),
            space_path,
            tracking_uri=f"sqlite:///{folder}/mlflow.db",
            tuner_dir=Path(folder) / "tuner",
            observer=recorder,
        )
        seconds = time.perf_counter() - started
    rss, total = recorder.after_trial, recorder.with_trial_process
    assert len(rss) == TRIALS, f"expected {TRIALS} trials, got {len(rss)}"
    ratio = rss[-1] / rss[4]
    # the trial process grows until it is replaced, a sawtooth: compare the peaks of the two halves
    half = TRIALS // 2
    total_ratio = max(total[half:]) / max(total[:half])
    print("search process RSS per trial (MiB):", " ".join(f"{v:.0f}" for v in rss))
    print("with its trial process (MiB):      ", " ".join(f"{v:.0f}" for v in total))
    record("memory", f"search process RSS after trial 5: {rss[4]:.0f} MiB, after trial 30: {rss[-1]:.0f} MiB, ratio {ratio:.3f}; "
           f"with its trial process at most {max(total):.0f} MiB, peak of trials {half + 1}-{TRIALS} ÷ of 1-{half} "
           f"{total_ratio:.3f} (goal <= 1.10)", f"{TRIALS} trials in {seconds:.0f} s")
    sys.exit(0 if max(ratio, total_ratio) <= 1.10 else 1)

if __name__ == "__main__":
    main()
