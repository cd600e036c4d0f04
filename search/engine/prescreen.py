"""Prescreening (`search.prescreen`): a strategy samples round(1/keep) candidates per trial, each is scored
untrained by a zero-cost proxy, and only the best is trained.

The score is the one `archsearch plan --score` gives and every prescreened trial logs as `proxy_score`:
the candidate built fresh with the search's seed, scored on the first training images. Scoring happens
where the oracle runs (the search process, or the distributed chief), one candidate at a time.
"""

from __future__ import annotations

from collections.abc import Callable

import keras_tuner as kt
from keras_tuner.engine.trial import TrialStatus

from search.data import Data
from search.engine import compat
from search.engine.hypermodel import SpaceHyperModel
from search.models.proxies import BATCH, score, seeded_build
from search.spec.schema import Space

Scorer = Callable[[kt.HyperParameters], float]  # a sampled candidate's hyperparameters -> its proxy score


class ProxyScorer:
    """The prescreen's proxy score of a candidate of `space`, on the first `BATCH` training images of `data`."""

    def __init__(self, space: Space, data: Data):
        self.hypermodel = SpaceHyperModel(space, data)
        self.proxy, self.seed = space.search.prescreen.proxy, space.search.seed
        self.x, self.y = data.x_train[:BATCH], data.y_train[:BATCH]

    def __call__(self, hp: kt.HyperParameters) -> float:
        return score(seeded_build(lambda: self.hypermodel.build(hp), self.seed), self.proxy, self.x, self.y)


class Prescreened:
    """Oracle mixin: `best_of(draw)` draws `sampled` candidates and returns the one `scorer` ranks first
    (the first drawn on a tie); without a scorer it is one draw. Draws that repeat are scored once."""

    def __init__(self, *, scorer: Scorer | None = None, sampled: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.scorer, self.sampled = scorer, sampled

    def best_of(self, draw: Callable[[], dict | None]) -> dict | None:
        if self.scorer is None or self.sampled == 1:
            return draw()
        drawn = []
        for _ in range(self.sampled):
            values = draw()
            if values is None:
                break
            if values not in drawn:
                drawn.append(values)
        if len(drawn) < 2:
            return drawn[0] if drawn else None
        scores = [self.scorer(self._candidate(values)) for values in drawn]
        return drawn[scores.index(max(scores))]

    def _candidate(self, values: dict) -> kt.HyperParameters:
        hp = self.hyperparameters.copy()
        hp.values = dict(values)
        return hp


class PrescreenedRandomOracle(Prescreened, compat.RandomSearchOracle):
    """KerasTuner's random search, each trial the best-scoring of `sampled` random draws."""

    def populate_space(self, trial_id):
        values = self.best_of(self.random_values)
        if values is None:  # the space is exhausted
            return {"status": TrialStatus.STOPPED, "values": None}
        return {"status": TrialStatus.RUNNING, "values": values}
