"""Search strategy name -> a KerasTuner oracle inside our tracked tuner.

The oracles are KerasTuner's own; hyperband also needs KerasTuner's Hyperband tuner (it resumes a
trial from the checkpoint of a shorter one), so it gets a tracked subclass of its own.
"""

from __future__ import annotations

import keras_tuner as kt

from search.space import Space
from search.tuner import TrackedTuner

ORACLES = {
    "grid": kt.oracles.GridSearchOracle,
    "random": kt.oracles.RandomSearchOracle,
    "bayesian": kt.oracles.BayesianOptimizationOracle,
}
STRATEGIES = (*ORACLES, "hyperband")


class TrackedHyperband(TrackedTuner, kt.Hyperband):
    """Hyperband's successive halving, with every bracket's trial tracked like any other."""


def objective(space: Space) -> kt.Objective:
    name = space.search.objective
    return kt.Objective(name, direction="min" if name.endswith("loss") else "max")


def planned_trials(space: Space) -> int | None:
    """The trial budget: `max_trials`, or the whole grid (capped at the grid, which no oracle exceeds);
    None for hyperband, whose brackets decide."""
    if space.search.strategy == "hyperband":
        return None
    grid = space.grid_size()
    return min(space.search.max_trials or grid, grid)


def make_tuner(space: Space, **tuner_kwargs) -> TrackedTuner:
    """`tuner_kwargs`: the tracked tuner's own arguments plus KerasTuner's (hypermodel, directory, ...)."""
    search = space.search
    tuner_kwargs = tuner_kwargs | {"max_model_size": search.max_params}
    common = {
        "objective": objective(space),
        "seed": search.seed,
        "max_consecutive_failed_trials": search.max_consecutive_failed_trials,
    }
    if search.strategy == "hyperband":
        return TrackedHyperband(
            max_epochs=space.training.epochs,
            factor=search.hyperband_factor,
            executions_per_trial=search.executions_per_trial,
            **common,
            **tuner_kwargs,
        )
    if search.strategy not in ORACLES:
        raise ValueError(f"unknown strategy {search.strategy!r}; known: {', '.join(STRATEGIES)}")
    oracle = ORACLES[search.strategy](max_trials=planned_trials(space), **common)  # type: ignore[arg-type]
    return TrackedTuner(oracle=oracle, executions_per_trial=search.executions_per_trial, **tuner_kwargs)
