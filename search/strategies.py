"""Search strategy name -> one of KerasTuner's oracles (or our evolution oracle), driving our tracked tuner."""

from __future__ import annotations

import functools

import keras_tuner as kt
from keras_tuner.src.tuners.gridsearch import LinkedList

from search.evolution import RegularizedEvolutionOracle
from search.space import Space
from search.tuner import TrackedTuner

STRATEGIES = ("grid", "random", "bayesian", "hyperband", "evolution")


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


class GridSearchOracle(kt.oracles.GridSearchOracle):
    """KerasTuner's grid oracle, able to continue after a reload.

    KerasTuner does not save two parts of its state: the trials in grid order and the trials whose next
    combination may not be made yet. A reloaded grid search therefore failed on its next new trial
    (KeyError). Both follow from the saved trials, so they are rebuilt from them."""

    def set_state(self, state):
        super().set_state(state)
        in_grid_order = sorted(
            self.start_order, key=functools.cmp_to_key(lambda a, b: self._compare(self.trials[a].hyperparameters.values,
                                                                                  self.trials[b].hyperparameters.values))
        )
        self._ordered_ids = LinkedList()
        for trial_id in in_grid_order:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(self.start_order)  # each one's successor is made unless it already exists


def make_oracle(space: Space) -> kt.Oracle:
    search = space.search
    common = {
        "objective": objective(space),
        "seed": search.seed,
        "max_consecutive_failed_trials": search.max_consecutive_failed_trials,
    }
    if search.strategy == "grid":
        return GridSearchOracle(max_trials=planned_trials(space), **common)
    if search.strategy == "random":
        return kt.oracles.RandomSearchOracle(max_trials=planned_trials(space), **common)
    if search.strategy == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=planned_trials(space), **common)
    if search.strategy == "hyperband":
        return kt.oracles.HyperbandOracle(max_epochs=space.training.epochs, factor=search.hyperband_factor, **common)
    if search.strategy == "evolution":
        return RegularizedEvolutionOracle(
            max_trials=planned_trials(space), population_size=search.population_size, sample_size=search.sample_size, **common
        )
    raise ValueError(f"unknown strategy {search.strategy!r}; known: {', '.join(STRATEGIES)}")


def make_tuner(space: Space, **tuner_kwargs) -> TrackedTuner:
    """`tuner_kwargs`: the tracked tuner's own arguments plus KerasTuner's (directory, project_name, ...)."""
    return TrackedTuner(oracle=make_oracle(space), space=space, **tuner_kwargs)
