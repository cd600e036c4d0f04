"""Tracking overhead: wall time of an archsearch search ÷ the same trials as plain KerasTuner (goal <= 1.03).

Both sides train the same models (archsearch's hypermodel) on the same data split with the same seed and
TensorFlow's deterministic ops: archsearch in trial processes with MLflow logging, the baseline as
KerasTuner's own GridSearch calling `model.fit` in one process with no tracking.

    uv run python benchmarks/overhead.py
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

from search.data import load_data  # noqa: E402
from search.hypermodel import SpaceHyperModel  # noqa: E402
from search.quiet import import_tensorflow_quietly  # noqa: E402
from search.runner import run_search  # noqa: E402
from search.spacefile import load_space  # noqa: E402
from search.strategies import objective  # noqa: E402

SPACE = """\
name: overhead_benchmark
dataset: {name: digits, input_size: 32}
model: {family: resnet, depth: 20, residual: [false, true], bn: [post, pre]}
training: {learning_rate: 0.05, batch_size: 64, epochs: 4}
search: {strategy: grid, seed: 1}
"""


class SeededHyperModel(SpaceHyperModel):
    """Seeds each trial's weights as archsearch's trial processes do, so both sides train the same nets."""

    def build(self, hp):
        import keras

        keras.utils.set_random_seed(self.space.search.seed)
        return super().build(hp)


def plain_keras_tuner(space, folder: Path) -> tuple[float, list[float]]:
    import keras_tuner as kt

    tf = import_tensorflow_quietly()
    started = time.perf_counter()
    tf.config.experimental.enable_op_determinism()
    data = load_data(space.dataset, space.search.seed)
    tuner = kt.GridSearch(SeededHyperModel(space, data), objective=objective(space), seed=space.search.seed,
                          directory=str(folder), project_name="plain", overwrite=True)
    tuner.search(verbose=0)
    seconds = time.perf_counter() - started
    scores = sorted(t.score for t in tuner.oracle.get_best_trials(space.grid_size()))
    return seconds, scores


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        space_path = Path(folder) / "space.yaml"
        space_path.write_text(SPACE)
        space = load_space(space_path)
        started = time.perf_counter()
        result = run_search(space, space_path, tracking_uri=f"sqlite:///{folder}/store/mlflow.db", tuner_dir=Path(folder) / "tuner")
        ours = time.perf_counter() - started
        plain, plain_scores = plain_keras_tuner(space, Path(folder))
    ratio = ours / plain
    trials = len(result.trials)
    our_scores = sorted(result.trials["metrics.best_val_accuracy"])
    print(f"archsearch {ours:.1f} s, plain KerasTuner {plain:.1f} s for {trials} trials; best val accuracies "
          f"{[round(float(s), 4) for s in our_scores]} vs {[round(float(s), 4) for s in plain_scores]} (the same nets: equal)")
    record("overhead", f"archsearch search {ours:.1f} s ÷ plain KerasTuner + fit {plain:.1f} s = {ratio:.3f} (goal <= 1.03); "
           f"{(ours - plain) / trials:.2f} s per trial", f"{trials} trials, ResNet-20 at 32x32, 4 epochs, 1,438 images")
    sys.exit(0 if ratio <= 1.03 else 1)


if __name__ == "__main__":
    main()
