"""Search strategies: the registry from a space file's `search.strategy` to the oracle that drives it,
KerasTuner's (grid, random, bayesian, hyperband) or ours (regularized evolution, NSGA-II), each with archsearch's
additions (`search.engine.compat.Oracle`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras_tuner as kt

from search.engine import compat
from search.engine.evolution import RegularizedEvolutionOracle
from search.engine.nsga2 import NSGA2Oracle
from search.engine.prescreen import PrescreenedRandomOracle, Scorer
from search.spec.metrics import minimised
from search.spec.schema import Space


def _trial_budget(space: Space) -> dict:
    return {"max_trials": planned_trials(space)}


def _brackets(space: Space) -> dict:
    return {"max_epochs": space.training.epochs, "factor": space.search.hyperband_factor}


def _population(space: Space) -> dict:
    return _trial_budget(space) | {"population_size": space.search.population_size, "sample_size": space.search.sample_size}


def _pareto(space: Space) -> dict:
    search = space.search
    return _trial_budget(space) | {"costs": search.objectives[1:], "population_size": search.population_size, "crossover": search.crossover}


@dataclass(frozen=True)
class Strategy:
    """An oracle class and its options from the space. `budgeted`: it stops at `max_trials` (hyperband's
    brackets decide instead); `continues_trials`: a trial may go on from an earlier one's best weights."""

    oracle: type[compat.Oracle]
    options: Callable[[Space], dict] = _trial_budget
    budgeted: bool = True
    continues_trials: bool = False


STRATEGIES = {
    "grid": Strategy(compat.GridSearchOracle),
    "random": Strategy(PrescreenedRandomOracle),
    "bayesian": Strategy(compat.BayesianOptimizationOracle),
    "hyperband": Strategy(compat.HyperbandOracle, _brackets, budgeted=False, continues_trials=True),
    "evolution": Strategy(RegularizedEvolutionOracle, _population),
    "nsga2": Strategy(NSGA2Oracle, _pareto),
}


def objective(space: Space) -> kt.Objective:
    name = space.search.objective
    return kt.Objective(name, direction="min" if minimised(name) else "max")


def planned_trials(space: Space) -> int | None:
    """The trial budget: `max_trials`, or the whole grid (capped at the grid, which no oracle exceeds);
    None where the strategy sets its own (hyperband's brackets)."""
    if not STRATEGIES[space.search.strategy].budgeted:
        return None
    grid = space.grid_size()
    return min(space.search.max_trials or grid, grid)


def make_oracle(space: Space, scorer: Scorer | None = None) -> compat.Oracle:
    """The oracle of the space's strategy; `scorer` ranks what it samples under `search.prescreen`
    (`search.engine.prescreen.ProxyScorer`); an oracle that samples nothing (a worker's, or one whose
    state is being repaired) is made without."""
    search = space.search
    strategy = STRATEGIES[search.strategy]
    prescreen = {"scorer": scorer, "sampled": search.prescreen.sampled} if search.prescreen and scorer else {}
    return strategy.oracle(
        objective=objective(space),
        seed=search.seed,
        max_consecutive_failed_trials=search.max_consecutive_failed_trials,
        **strategy.options(space),
        **prescreen,
    )
