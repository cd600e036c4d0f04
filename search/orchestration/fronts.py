"""A Pareto study's comparison of its searches (`fronts` in study.yaml), after every search has run.

Each search seed's latest finished run is read back from MLflow. A latency is a measurement, and one taken
by each search while it ran carries that moment's load on the machine; so, for the judgement, every trial's
architecture is built again and timed in this one process, in a seeded random order (the weights do not
change the time), and the search-time figure is kept beside it. Counts (params, FLOPs) are used as logged.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from search.data import describe_input
from search.errors import TrackingError
from search.files import write_atomic
from search.models.latency import latency
from search.models.registry import build_candidate
from search.reporting.figures import figure_bytes, search_fronts, volume_curves
from search.reporting.fronts import compare_fronts, fronts_json, render_fronts, study_reference
from search.spec.metrics import best_metric
from search.spec.schema import TRAINING_AXES, Space, model_values
from search.spec.study import Study, seeded
from search.tracking.client import experiment_runs
from search.tracking.tags import PARENT_TAG, SEARCH_ROLE, TRIAL_ROLE

LATENCIES = ("latency_ms", "latency_batch_ms")  # costs re-timed for the judgement
RETIME_SEED = 0  # the order the architectures are timed in


def write_fronts(tracking_uri: str, experiment: str, study: Study, spaces: dict[str, Space], out: Path,
                 say: Callable[[str], None] = lambda text: None) -> Path:
    """`fronts.md`, `fronts.json`, `front_trials.csv` (every trial, to recompute every figure), `fronts.png`
    and `hypervolume.png`; each written whole, after the comparison was made. `spaces`: each search by its
    name in study.yaml, the name the comparison and its baseline use."""
    trials, hours = search_trials(tracking_uri, experiment, spaces, study.seeds)
    if trials.empty:
        raise TrackingError(f"no search of experiment {experiment!r} finished a trial; there are no fronts to compare")
    cost = next(iter(spaces.values())).search.objectives[1]
    if cost in LATENCIES:
        say(f"re-timing the {len(trials)} trials' architectures in this process for the front comparison ({cost})")
        trials["judged_cost"] = retimed(trials, spaces, cost)
        judged = f"{cost} re-timed after the searches in one process (the search-time figures are in front_trials.csv)"
    else:
        trials["judged_cost"] = trials["cost"]
        judged = f"{cost} as logged"
    settings = study.fronts
    reference = study_reference(trials, len(spaces), settings.reference_accuracy, settings.reference_factor)
    comparison = compare_fronts(trials, hours, settings.baseline, reference)
    write_atomic(out / "front_trials.csv", trials.to_csv(index=False))
    write_atomic(out / "fronts.json", json.dumps(fronts_json(comparison), indent=2) + "\n")
    (out / "fronts.png").write_bytes(figure_bytes(search_fronts(trials, reference, cost), "png"))
    (out / "hypervolume.png").write_bytes(figure_bytes(volume_curves(comparison.curves), "png"))
    page = render_fronts(comparison, settings.question, cost, judged)
    write_atomic(out / "fronts.md", page + "\n![fronts](fronts.png)\n\n![hypervolume after each trial](hypervolume.png)\n")
    return out / "fronts.md"


def search_trials(tracking_uri: str, experiment: str, spaces: dict[str, Space], seeds: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per finished trial of each search's latest finished run at each seed, in the vocabulary of
    `search.reporting.fronts`, and each run's `search_hours`."""
    parents = experiment_runs(tracking_uri, experiment, SEARCH_ROLE)
    runs = experiment_runs(tracking_uri, experiment, TRIAL_ROLE)
    rows, hours = [], []
    for file, space in spaces.items():
        for seed in seeds:
            name = seeded(space, seed, experiment).name
            mine = parents[(parents["params.space"] == name) & (parents["status"] == "FINISHED")].sort_values("end_time")
            if mine.empty:
                raise TrackingError(f"no finished search {name!r} in experiment {experiment!r}; run the study first")
            parent = mine.iloc[-1]
            hours.append({"search": file, "seed": seed, "search_hours": float(parent.get("metrics.search_hours", np.nan))})
            trials = runs[(runs[f"tags.{PARENT_TAG}"] == parent["run_id"]) & (runs["status"] == "FINISHED")]
            needed = [f"metrics.{best_metric('val_accuracy')}", "metrics.test_accuracy", f"metrics.{space.search.objectives[1]}"]
            missing = [column for column in needed if column not in trials or trials[column].isna().any()]
            if len(trials) and missing:
                raise TrackingError(f"trials of search {name!r} logged no {missing[0].removeprefix('metrics.')}; a front "
                                    "comparison needs every finished trial's validation and test accuracy and its cost")
            for number, (_, trial) in enumerate(trials.sort_values("end_time", kind="stable").iterrows(), start=1):
                rows.append({
                    "search": file, "seed": seed, "trial": number, "run_id": trial["run_id"], "strategy": space.search.strategy,
                    "architecture": architecture(trial, space),
                    "model_values": json.dumps(model_choice(trial, space)), "batch_size": int(trial["params.batch_size"]),
                    "val_accuracy": float(trial[f"metrics.{best_metric('val_accuracy')}"]),
                    "test_accuracy": float(trial["metrics.test_accuracy"]),
                    "cost": float(trial[f"metrics.{space.search.objectives[1]}"]),
                })
    return pd.DataFrame(rows), pd.DataFrame(hours)


def architecture(trial: pd.Series, space: Space) -> str:
    """What identifies the trial's net: its model values that vary between trials (the genotype, say)."""
    varying = [name for name in space.varying_names() if name not in TRAINING_AXES]
    return "; ".join(f"{name}={trial[f'params.{name}']}" for name in varying)


def model_choice(trial: pd.Series, space: Space) -> dict:
    """The trial's model values, typed as the space declares them (MLflow keeps params as text)."""
    values = dict(space.model.axes())
    chosen = {}
    for name, choices in values.items():
        logged = trial.get(f"params.{name}")
        matches = [choice for choice in choices if str(choice) == str(logged)]
        if len(choices) > 1 and not matches:
            raise TrackingError(f"trial {trial['run_id']} logged {name}={logged!r}, not one of its space's values")
        chosen[name] = matches[0] if len(choices) > 1 else choices[0]
    if space.model.searched:
        chosen |= {name: trial[f"params.{name}"] for name in space.model.structure_names()}
    return model_values(chosen)


def retimed(trials: pd.DataFrame, spaces: dict[str, Space], which: str) -> pd.Series:
    """Each trial's architecture built again and timed here, the trials in a seeded random order."""
    order = list(trials.index)
    random.Random(RETIME_SEED).shuffle(order)
    shapes = {file: describe_input(space.dataset) for file, space in spaces.items()}
    timed = pd.Series(np.nan, index=trials.index)
    for index in order:
        trial = trials.loc[index]
        space = spaces[trial["search"]]
        input_shape, num_classes = shapes[trial["search"]]
        keras.backend.clear_session()
        model = build_candidate(space.model, json.loads(trial["model_values"]), input_shape=input_shape, num_classes=num_classes)
        images = np.zeros((trial["batch_size"], *input_shape), dtype=np.float32)
        timed[index] = latency(model, images, trial["batch_size"], max(space.tracking.latency_calls, 1))[which]
    return timed
