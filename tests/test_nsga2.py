"""NSGA-II as a KerasTuner oracle: its population order, its children, and a real two-objective search."""

import json
import random

import keras_tuner as kt
import numpy as np
import pytest
from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.engine.front import reference_point
from search.engine.hypermodel import declare
from search.engine.nsga2 import NSGA2Oracle
from search.reporting.pareto import dominates, fronts, hypervolume
from search.spec.schema import Space
from search.tracking.tags import PARENT_TAG, REFERENCE_TAG

CELLS = {
    "name": "cells",
    "dataset": {"name": "digits", "input_size": 8},
    "model": {"family": "cells", "blocks": 3, "cells_per_stage": 1, "filters": 4},
    "search": {"strategy": "nsga2", "objectives": ["val_accuracy", "params"], "max_trials": 40, "population_size": 6},
}


def oracle_for(tmp_path, seed: int = 5, crossover: float = 0.5) -> NSGA2Oracle:
    space = Space.model_validate(CELLS)
    oracle = NSGA2Oracle(objective=kt.Objective("val_accuracy", "max"), max_trials=40, seed=seed, costs=["params"],
                         population_size=6, crossover=crossover)
    hp = kt.HyperParameters()
    declare(hp, space)
    oracle.update_space(hp)
    oracle._set_project_dir(str(tmp_path), f"nsga2{seed}")
    return oracle


def accuracy_and_size(values: dict) -> tuple[float, float]:
    """A made-up trade-off: separable convs raise accuracy and size, identities lower both; noise breaks ties."""
    ops = [v for v in values.values() if isinstance(v, str)]
    noise = random.Random(str(sorted(values.items()))).random() * 0.01
    return sum(op.startswith("sep") for op in ops) / len(ops) + noise, 1000.0 + 100 * sum(op != "identity" for op in ops)


def run(oracle, trials: int) -> list:
    done = []
    for _ in range(trials):
        trial = oracle.create_trial("worker")
        accuracy, params = accuracy_and_size(trial.hyperparameters.values)
        oracle.update_trial(trial.trial_id, {"val_accuracy": accuracy, "params": params})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        done.append(trial)
    return done


def points(trials) -> np.ndarray:
    return np.array([[-a, p] for a, p in (accuracy_and_size(t.hyperparameters.values) for t in trials)])


def test_the_population_takes_whole_fronts_first_and_cuts_the_last_by_crowding(tmp_path):
    oracle = oracle_for(tmp_path)
    run(oracle, 20)
    ranked = oracle.ranked()
    assert len(ranked) == 6
    finished = [oracle.trials[t] for t in oracle.end_order]
    every = points(finished)
    layers = fronts(every)
    ids = [t.trial_id for t, _, _ in ranked]
    rank_of = {finished[i].trial_id: k for k, front in enumerate(layers) for i in front}
    assert [rank_of[i] for i in ids] == sorted(rank_of[i] for i in ids), "better fronts first"
    worst = max(rank_of[i] for i in ids)
    assert all(rank_of[t.trial_id] == worst or t.trial_id in ids for t in finished if rank_of[t.trial_id] <= worst), \
        "every front above the last one taken is taken whole"


def test_children_are_new_and_the_front_improves_on_the_random_start(tmp_path):
    oracle = oracle_for(tmp_path)
    trials = run(oracle, 40)
    keys = [tuple(sorted(t.hyperparameters.values.items())) for t in trials]
    assert len(set(keys)) == 40, "no candidate twice"
    reference = np.array([0.0, 2300.0])  # worse than any: no accuracy, more than the 12 ops can cost
    start, end = hypervolume(points(trials[:6]), reference), hypervolume(points(trials), reference)
    assert end > 1.2 * start, (start, end)
    later = points(trials[6:])
    assert any(not any(dominates(p, q) for p in points(trials[:6])) for q in later), "children reach the front"


def test_nsga2_is_a_function_of_its_seed_and_history(tmp_path):
    runs = [[t.hyperparameters.values for t in run(oracle_for(tmp_path / str(i), seed), 14)] for i, seed in enumerate((5, 5, 6))]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_a_real_two_objective_search_reports_its_costs_to_the_oracle(tmp_path):
    text = (TINY_SPACE.replace("width: 0.5", "width: [0.25, 0.5, 1.0]")
            .replace("strategy: grid", "strategy: nsga2\n  objectives: [val_accuracy, params]\n  population_size: 2\n  max_trials: 3")
            .replace("epochs: 2", "epochs: 1"))
    space = write(tmp_path / "s.yaml", text)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(app, ["run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner")])
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    trials = [r for r in runs if PARENT_TAG in r.data.tags]
    assert len(trials) == 3 and all(t.info.status == "FINISHED" for t in trials)
    assert [r.data.params["strategy"] for r in runs if PARENT_TAG not in r.data.tags] == ["nsga2"]
    state = json.loads((tmp_path / "tuner" / "tiny" / "oracle.json").read_text())
    assert state["costs"] == ["params"] and state["population_size"] == 2
    saved = sorted((tmp_path / "tuner").rglob("trial.json"))
    assert len(saved) == 3
    logged = {t.data.params["trial_id"]: t.data.metrics["params"] for t in trials}
    for path in saved:
        trial = json.loads(path.read_text())
        seen = trial["metrics"]["metrics"]["params"]["observations"][0]["value"][0]
        assert seen == logged[trial["trial_id"]], "the oracle saw the params the trial logged"
    # the front and the hypervolume, as the search logged them, against the logged objectives
    placed = np.array([[-t.data.metrics["best_val_accuracy"], t.data.metrics["params"]] for t in trials])
    on_front = set(fronts(placed)[0].tolist())
    assert [t.data.metrics["on_front"] for t in trials] == [float(i in on_front) for i in range(len(trials))]
    parent = next(r for r in runs if PARENT_TAG not in r.data.tags)
    history = client.get_metric_history(parent.info.run_id, "hypervolume")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == sorted(m.value for m in history), "a front's hypervolume never shrinks"
    by_end = sorted(trials, key=lambda t: t.info.end_time)
    ordered = np.array([[-t.data.metrics["best_val_accuracy"], t.data.metrics["params"]] for t in by_end])
    reference = reference_point(ordered[:2])  # fixed by the population of 2
    assert history[-1].value == pytest.approx(hypervolume(ordered, reference))
    assert history[0].value == pytest.approx(hypervolume(ordered[:1], reference)) and history[0].value > 0
    assert parent.data.tags[REFERENCE_TAG].startswith("best_val_accuracy ")
