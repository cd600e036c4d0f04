"""Tracking overhead: wall time of `archsearch run` ÷ the same trials as a plain KerasTuner script (goal <= 1.03).

Each side is a new Python process from start to exit, as a user runs it. archsearch: the command itself
(space-file checks, a process per trial, MLflow logging into a new sqlite store, the live display, the
ranked table). Plain: a script that loads the same data split, builds the same models (archsearch's
hypermodel, seeded alike, TensorFlow's deterministic ops) and lets KerasTuner's GridSearch call
`model.fit`, with no tracking. Both sides reach the same accuracies, which the script checks. The sides
take turns, first one then the other, over several rounds, and the medians are compared, so that a slow
moment of the machine does not land on one side only. The time each side spends inside `model.fit` is
reported too, to tell training speed apart from what is around it.

    uv run python benchmarks/overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from results import record  # noqa: E402

TRIALS, EPOCHS = 4, 4
SPACE = f"""\
name: overhead_benchmark
dataset: {{name: digits, input_size: 32}}
model: {{family: resnet, depth: 20, residual: [false, true], bn: [post, pre]}}
training: {{learning_rate: 0.05, batch_size: 64, epochs: {EPOCHS}}}
search: {{strategy: grid, seed: 1}}
"""


def plain_keras_tuner(space_path: Path, folder: Path) -> dict:
    """The baseline's whole program: what a KerasTuner user writes, with archsearch's models and data."""
    import keras
    import keras_tuner as kt
    import tensorflow as tf

    from search.data import load_data
    from search.engine.hypermodel import SpaceHyperModel
    from search.engine.oracles import objective
    from search.spec.reader import load_space

    fit_seconds = []

    class SeededHyperModel(SpaceHyperModel):
        """Seeds each trial's weights as archsearch's trial processes do, so both sides train the same nets."""

        def build(self, hp):
            keras.utils.set_random_seed(self.space.search.replicate_seeds()[0])
            return super().build(hp)

        def fit(self, hp, model, *args, **kwargs):
            started = time.perf_counter()
            history = super().fit(hp, model, *args, seed=self.space.search.replicate_seeds()[0], **kwargs)
            fit_seconds.append(time.perf_counter() - started)
            return history

    tf.config.experimental.enable_op_determinism()
    space = load_space(space_path)
    data = load_data(space.dataset)
    tuner = kt.GridSearch(SeededHyperModel(space, data), objective=objective(space), seed=space.search.seed,
                          directory=str(folder), project_name="plain", overwrite=True)
    tuner.search(verbose=0)
    scores = sorted(t.score for t in tuner.oracle.get_best_trials(space.grid_size()))
    return {"scores": scores, "fit_seconds": sum(fit_seconds)}


def archsearch_outcome(folder: Path) -> dict:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{folder}/store/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.`archsearch.role` = 'trial'")
    return {"scores": sorted(run.data.metrics["best_val_accuracy"] for run in runs),
            "fit_seconds": sum(run.data.metrics["train_seconds"] for run in runs)}


def timed(command: list[str]) -> float:
    """Seconds from start to exit, with a terminal for its output, so a live display draws as it does for a user."""
    main, terminal = pty.openpty()
    drain = threading.Thread(target=_read_until_closed, args=(main,), daemon=True)
    drain.start()
    started = time.perf_counter()
    try:
        subprocess.run(command, check=True, stdout=terminal, stderr=terminal)
    finally:
        seconds = time.perf_counter() - started
        os.close(terminal)
        drain.join()
    return seconds


def _read_until_closed(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # the terminal's last user closed it
        pass
    finally:
        os.close(fd)


def one_round(space_path: Path, folder: Path, archsearch_first: bool) -> tuple[float, float, dict, dict]:
    folder.mkdir()
    ours = [shutil.which("archsearch") or str(Path(sys.executable).with_name("archsearch")), "run", str(space_path),
            "--tracking-uri", f"sqlite:///{folder}/store/mlflow.db", "--tuner-dir", str(folder / "tuner")]
    plain = [sys.executable, __file__, "--plain", str(space_path), str(folder / "plain")]
    if archsearch_first:
        ours_seconds, plain_seconds = timed(ours), timed(plain)
    else:
        plain_seconds, ours_seconds = timed(plain), timed(ours)
    plain_outcome = json.loads((folder / "plain" / "outcome.json").read_text())
    return ours_seconds, plain_seconds, archsearch_outcome(folder), plain_outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plain", nargs=2, type=Path, metavar=("SPACE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:  # the baseline's own process
        space_path, folder = args.plain
        (folder / "outcome.json").write_text(json.dumps(plain_keras_tuner(space_path, folder)))
        return
    ours, plain, fits = [], [], []
    with tempfile.TemporaryDirectory() as temporary:
        space_path = Path(temporary) / "space.yaml"
        space_path.write_text(SPACE)
        for round_ in range(args.rounds):
            # a folder per round: MLflow keeps a store open per URI, and would read a deleted store's runs again
            folder = Path(temporary) / f"round-{round_ + 1}"
            ours_seconds, plain_seconds, our_outcome, plain_outcome = one_round(space_path, folder, round_ % 2 == 0)
            ours.append(ours_seconds)
            plain.append(plain_seconds)
            fits.append((our_outcome["fit_seconds"], plain_outcome["fit_seconds"]))
            our_scores, plain_scores = ([round(s, 4) for s in outcome["scores"]] for outcome in (our_outcome, plain_outcome))
            print(f"round {round_ + 1}: archsearch {ours_seconds:.1f} s (in fit {fits[-1][0]:.1f} s), plain {plain_seconds:.1f} s "
                  f"(in fit {fits[-1][1]:.1f} s); best val accuracies {our_scores} "
                  f"{'equal' if our_scores == plain_scores else 'DIFFER from ' + str(plain_scores)}", flush=True)
    ratio = statistics.median(ours) / statistics.median(plain)
    per_trial = (statistics.median(ours) - statistics.median(plain)) / TRIALS
    each = ", ".join(f"{o / p:.3f}" for o, p in zip(ours, plain))
    fit_ours, fit_plain = (statistics.median(side) for side in zip(*fits))
    outside_ours = statistics.median(total - fit for total, (fit, _) in zip(ours, fits))
    outside_plain = statistics.median(total - fit for total, (_, fit) in zip(plain, fits))
    record("overhead", f"`archsearch run` {statistics.median(ours):.1f} s ÷ plain KerasTuner script {statistics.median(plain):.1f} s "
           f"= {ratio:.3f} (goal <= 1.03); {abs(per_trial):.2f} s {'more' if per_trial >= 0 else 'less'} per trial; "
           f"each round: {each} (median {statistics.median(o / p for o, p in zip(ours, plain)):.3f}); "
           f"in model.fit {fit_ours:.1f} s and {fit_plain:.1f} s, outside it {outside_ours:.1f} s and {outside_plain:.1f} s",
           f"whole processes, median of {args.rounds} rounds; {TRIALS} trials, ResNet-20 at 32x32, {EPOCHS} epochs, 1,438 images")
    sys.exit(0 if ratio <= 1.03 else 1)


if __name__ == "__main__":
    main()
