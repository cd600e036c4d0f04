"""Build the ground-truth tables: every candidate of resnet.yaml (144 nets) and cells.yaml (100 drawn cells)
trained once per seed by `archsearch run`, and the zero-cost proxies of every candidate.

Writes, next to this file:
  <space>.csv          one row per candidate and seed: the axes, test_accuracy, best_val_accuracy, the
                       validation curve (val_accuracy@1 ...), params, flops, latency_ms, train_seconds
  <space>_proxies.csv  one row per candidate: every proxy of search.models.proxies, untrained, seeded by 1,
                       on the first 64 training images (what `archsearch plan --score` computes)

Each part (a space at a seed, a space's proxies) is written when it finishes. Resumable: run it again
after a kill and the interrupted search continues where it stopped (finished parts are only re-read).

    uv run python benchmarks/groundtruth/build.py [--store DIR] [--parts resnet:1,resnet:2,...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
SEEDS = (1, 2, 3)
PARTS = [f"{space}:{seed}" for space in ("resnet", "cells") for seed in (*SEEDS, "proxies")]
KEPT_METRICS = ("test_accuracy", "best_val_accuracy", "selected_epoch", "params", "flops", "latency_ms",
                "latency_batch_ms", "train_seconds", "trial_seconds")
CURVES = ("val_accuracy", "val_loss")


def seeded_space(space: str, seed: int, store: Path) -> Path:
    """The space file at `seed`, in an experiment of its own."""
    spec = yaml.safe_load((HERE / f"{space}.yaml").read_text())
    spec["name"] = f"{spec['name']}_s{seed}"
    spec["search"]["seed"] = seed
    path = store / "spaces" / f"{spec['name']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False, width=1000))
    return path


def train(space: str, seed: int, store: Path) -> pd.DataFrame:
    """Run (or continue) the search of one seed and read its trials back from the store."""
    from search import api
    from search.tracking.client import metric_histories

    path = seeded_space(space, seed, store)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    command = [sys.executable, "-m", "search.cli", "run", str(path), "--tracking-uri", uri, "--tuner-dir", str(store / "tuner")]
    subprocess.run(command, check=True)
    loaded = api.load_space(HERE / f"{space}.yaml")
    trials = api.trials(loaded.experiment + f"_s{seed}", tracking_uri=uri)
    trials = trials[trials["status"] == "FINISHED"]
    axes = loaded.varying_names()
    numbers = {_key(loaded.candidate(i), axes): i + 1 for i in range(loaded.grid_size())}
    table = pd.DataFrame({"candidate": [numbers[_key(row, axes)] for _, row in trials.iterrows()], "seed": seed})
    for name in axes:
        table[name] = trials[name].to_numpy()
    for name in KEPT_METRICS:
        table[name] = trials[name].to_numpy()
    histories = metric_histories(uri, list(trials["run_id"]), CURVES)
    for key in CURVES:
        wide = histories[histories["key"] == key].pivot(index="run_id", columns="step", values="value")
        for step in wide.columns:
            table[f"{key}@{step}"] = wide.loc[trials["run_id"], step].to_numpy()
    return table.sort_values("candidate").reset_index(drop=True)


def proxies(space: str) -> pd.DataFrame:
    """Every proxy of every candidate, as `archsearch plan --score` scores one."""
    from search import api
    from search.models.proxies import PROXIES
    from search.orchestration.plan import plan_candidates

    api.prepare()
    loaded = api.load_space(HERE / f"{space}.yaml")
    table = None
    for proxy in PROXIES:
        scored, _ = plan_candidates(loaded, sample=loaded.grid_size(), score=proxy)
        scored = scored.sort_values("candidate")[["candidate", *loaded.varying_names(), proxy]]
        table = scored if table is None else table.merge(scored)
        print(f"{space} proxies: {proxy} done", flush=True)
    return table.reset_index(drop=True)


def _key(values, axes: list[str]) -> tuple:
    return tuple(str(values[name]) for name in axes)


def write(table: pd.DataFrame, path: Path) -> None:
    from search.files import write_atomic

    write_atomic(path, table.to_csv(index=False, float_format="%.6g"))
    print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(table)} rows)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("mlruns/groundtruth"), help="MLflow store and tuner state")
    parser.add_argument("--parts", default=",".join(PARTS), help="space:seed or space:proxies, in order")
    args = parser.parse_args()
    store = args.store.resolve()
    store.mkdir(parents=True, exist_ok=True)
    for part in args.parts.split(","):
        space, which = part.split(":")
        started = time.perf_counter()
        if which == "proxies":
            write(proxies(space), HERE / f"{space}_proxies.csv")
        else:
            seed = int(which)
            path = HERE / f"{space}.csv"
            earlier = pd.read_csv(path) if path.exists() else pd.DataFrame({"seed": []})
            table = pd.concat([earlier[earlier["seed"] != seed], train(space, seed, store)], ignore_index=True)
            write(table.sort_values(["seed", "candidate"]), path)
        print(f"part {part}: {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
