"""NSGA-II (Deb et al. 2002) as a KerasTuner oracle: a search for the Pareto front of accuracy and cost.

KerasTuner asks for one trial at a time, so this is NSGA-II's steady-state form. The first
`population_size` trials are random. After that each trial is a child: the parents' population is the
`population_size` best finished trials by NSGA-II's order (non-dominated front first, then the larger
crowding distance, `search.reporting.pareto`); two parents are picked by binary tournaments in that order,
mixed by uniform crossover (each hyperparameter from either parent) with probability `crossover`, and one
hyperparameter of the result is changed (for searched cells: one op or one input of one block). The
objectives are the oracle's objective (a trial's score) and costs the trials report beside it (`params`,
`latency_ms`, ...), which are minimised. Being an oracle, it runs wherever KerasTuner's oracles do, the
distributed chief included; its choices depend only on the seed and the trials so far.
"""

from __future__ import annotations

import random

import numpy as np
from keras_tuner.engine import trial as trial_module

from search.engine.evolution import PopulationOracle, mutate
from search.reporting.pareto import crowding, fronts


class NSGA2Oracle(PopulationOracle):
    min_parents = 2  # a tournament draws two

    def __init__(self, *, costs: list[str], crossover: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.costs = list(costs)
        self.crossover = crossover

    def parents(self) -> list[tuple[trial_module.Trial, int, float]]:
        return self.ranked()

    def objective_vector(self, trial) -> np.ndarray:
        """The trial's objectives, each to be minimised: its score (negated when maximised), then its costs."""
        score = trial.score if self.objective.direction == "min" else -trial.score
        costs = [trial.metrics.get_last_value(cost) if trial.metrics.exists(cost) else np.nan for cost in self.costs]
        return np.array([score, *costs], dtype=float)

    def ranked(self) -> list[tuple[trial_module.Trial, int, float]]:
        """The parents' population: up to `population_size` finished trials as (trial, front, crowding),
        in NSGA-II's order: whole fronts first, the last one cut by crowding distance."""
        finished = [self.trials[t] for t in self.end_order if self.trials[t].status == trial_module.TrialStatus.COMPLETED]
        points = np.array([self.objective_vector(t) for t in finished]) if finished else np.zeros((0, 1 + len(self.costs)))
        chosen: list[tuple[trial_module.Trial, int, float]] = []
        for rank, front in enumerate(fronts(points)):
            distance = crowding(points[front])
            order = sorted(range(len(front)), key=lambda i: -distance[i])  # stable: ties keep the trials' order
            chosen += [(finished[front[i]], rank, float(distance[i])) for i in order]
            if len(chosen) >= self.population_size:
                break
        return chosen[: self.population_size]

    def _child(self, ranked: list, rng: random.Random) -> dict | None:
        mutable = self._mutable()
        for _ in range(self.max_collisions):
            first, second = _tournament(ranked, rng), _tournament(ranked, rng)
            values = dict(first.hyperparameters.values)
            if rng.random() < self.crossover:
                values = {name: (value if rng.random() < 0.5 else second.hyperparameters.values.get(name, value)) for name, value in values.items()}
            child = mutate(values, mutable, rng)
            if child is not None and not self.is_duplicate(child):
                return child
        return self.random_values()  # the neighbourhood is used up: explore elsewhere

    def get_state(self):
        return super().get_state() | {"costs": self.costs, "crossover": self.crossover}

    def set_state(self, state):
        super().set_state(state)
        self.costs, self.crossover = state["costs"], state["crossover"]


def _tournament(ranked: list, rng: random.Random):
    """Binary tournament: of two members drawn at random, the one on the better front, then the less crowded."""
    (a, rank_a, far_a), (b, rank_b, far_b) = rng.sample(ranked, 2)
    return a if (rank_a, -far_a) <= (rank_b, -far_b) else b
