"""What keeping trained models costs: wall time of `archsearch run` with `training.save_models: best` and
`all`, each ÷ the same search with `none` (goal: best ≤ 1.03).

Each variant is a new `archsearch run` process from start to exit, into a new store; the variants take
turns over several rounds (the order rotates each round) and the medians of the per-round ratios are
reported, so a slow minute of the machine does not land on one variant only. The models' size on disk is
reported too.

    uv run python benchmarks/model_keeping.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import record

TRIALS, EPOCHS = 4, 4
SPACE = """\
name: model_keeping_benchmark
dataset: {{name: digits, input_size: 32}}
model: {{family: resnet, depth: 20, residual: [false, true], bn: [post, pre]}}
training: {{learning_rate: 0.05, batch_size: 64, epochs: {epochs}, save_models: {mode}}}
search: {{strategy: grid, seed: 1}}
"""
MODES = ("none", "best", "all")


def one_run(folder: Path, mode: str) -> tuple[float, int]:
    """Seconds from start to exit, and the bytes of the kept models."""
    folder.mkdir()
    space = folder / "space.yaml"
    space.write_text(SPACE.format(epochs=EPOCHS, mode=mode))
    command = [shutil.which("archsearch") or str(Path(sys.executable).with_name("archsearch")), "run", str(space),
               "--tracking-uri", f"sqlite:///{folder}/store/mlflow.db", "--tuner-dir", str(folder / "tuner")]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    models = [path for path in (folder / "store" / "artifacts").rglob("*") if "model" in path.relative_to(folder).parts and path.is_file()]
    return seconds, sum(path.stat().st_size for path in models)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as temporary:
        for round_ in range(args.rounds):
            order = MODES[round_ % 3:] + MODES[: round_ % 3]
            for mode in order:
                wall, size = one_run(Path(temporary) / f"{round_}-{mode}", mode)
                seconds[mode].append(wall)
                sizes[mode] = size
            print(f"round {round_ + 1}: " + ", ".join(f"{mode} {seconds[mode][-1]:.1f} s" for mode in MODES), flush=True)
    ratios = {mode: statistics.median(s / n for s, n in zip(seconds[mode], seconds["none"])) for mode in ("best", "all")}
    figures = (f"best/none **{ratios['best']:.3f}**, all/none {ratios['all']:.3f} (medians of {args.rounds} rounds); "
               f"medians none {statistics.median(seconds['none']):.1f} s, best {statistics.median(seconds['best']):.1f} s, "
               f"all {statistics.median(seconds['all']):.1f} s; models on disk: best {sizes['best'] / 2**20:.1f} MiB, "
               f"all {sizes['all'] / 2**20:.1f} MiB")
    record("model_keeping.py", figures, f"{TRIALS} ResNet-20 trials x {EPOCHS} epochs, digits 32x32, grid")


if __name__ == "__main__":
    main()
