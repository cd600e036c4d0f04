"""Regularized (aging) evolution (Real et al. 2019) as a KerasTuner oracle.

The first `population_size` trials are random. After that each trial is a child: draw `sample_size`
trials from the population, take the best, and change one of its hyperparameters (for searched cells: one
op or one input of one block). The population is the `population_size` most recently finished trials,
so every new child pushes out the oldest member, however good it was: the "aging" that regularises the
search. Being an oracle, it runs wherever KerasTuner's oracles run, the distributed chief included; its
choices depend only on the seed and the trials so far, so a resumed search continues where it stopped.
"""

from __future__ import annotations

import random

from keras_tuner.engine import hyperparameters as hp_module
from keras_tuner.engine import trial as trial_module

from search.engine.compat import BaseOracle
from search.engine.prescreen import Prescreened


class PopulationOracle(Prescreened, BaseOracle):
    """What evolution and NSGA-II share: the first `population_size` trials are random, then each is a
    child of `parents()` (`_child`), drawn with a generator seeded by the seed and the trial's number;
    with a prescreen, the best-scoring of several such draws."""

    min_parents = 1

    def __init__(self, *, population_size: int = 20, max_collisions: int = 50, **kwargs):
        super().__init__(**kwargs)
        self.population_size = population_size
        self.max_collisions = max_collisions

    def populate_space(self, trial_id):
        rng = random.Random(f"{self.seed}/{len(self.start_order)}")
        parents = self.parents()
        if len(self.start_order) < self.population_size or len(parents) < self.min_parents:
            values = self.best_of(self.random_values)
        else:
            values = self.best_of(lambda: self._child(parents, rng))
        if values is None:  # the space is exhausted
            return {"status": trial_module.TrialStatus.STOPPED, "values": None}
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    def parents(self) -> list:
        raise NotImplementedError

    def _child(self, parents: list, rng: random.Random) -> dict | None:
        raise NotImplementedError

    def _mutable(self) -> list[hp_module.HyperParameter]:
        """Hyperparameters with more than one value: the ones a mutation can change."""
        return [hp for hp in self.hyperparameters.space if len(choices(hp)) > 1]

    def get_state(self):
        return super().get_state() | {"population_size": self.population_size}

    def set_state(self, state):
        super().set_state(state)
        self.population_size = state["population_size"]


class RegularizedEvolutionOracle(PopulationOracle):
    def __init__(self, *, sample_size: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.sample_size = sample_size

    def parents(self) -> list[trial_module.Trial]:
        return self.population()

    def population(self) -> list[trial_module.Trial]:
        """The living population: the most recently finished, successful trials, oldest first."""
        finished = [self.trials[t] for t in self.end_order if self.trials[t].status == trial_module.TrialStatus.COMPLETED]
        return finished[-self.population_size :]

    def _child(self, population: list, rng: random.Random) -> dict | None:
        """Tournament selection, then one mutation; a child already tried is drawn again."""
        for _ in range(self.max_collisions):
            sample = rng.sample(population, min(self.sample_size, len(population)))
            parent = max(sample, key=self._fitness)
            child = mutate(parent.hyperparameters.values, self._mutable(), rng)
            if child is not None and not self.is_duplicate(child):
                return child
        return self.random_values()  # the neighbourhood is used up: explore elsewhere

    def _fitness(self, trial) -> float:
        return trial.score if self.objective.direction == "max" else -trial.score

    def get_state(self):
        return super().get_state() | {"sample_size": self.sample_size}

    def set_state(self, state):
        super().set_state(state)
        self.sample_size = state["sample_size"]


def mutate(values: dict, mutable: list[hp_module.HyperParameter], rng: random.Random) -> dict | None:
    """`values` with one hyperparameter changed to a different value (None when nothing can change)."""
    if not mutable:
        return None
    hp = rng.choice(mutable)
    others = [v for v in choices(hp) if v != values.get(hp.name)]
    return {**values, hp.name: rng.choice(others)}


def choices(hp: hp_module.HyperParameter) -> list:
    if isinstance(hp, hp_module.Boolean):
        return [False, True]
    if isinstance(hp, hp_module.Choice):
        return list(hp.values)
    return []  # Fixed; ranges (Int, Float) are not used by space files
