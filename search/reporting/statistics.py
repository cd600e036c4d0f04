"""Replicate statistics behind a comparison: the interval of a group's mean, the difference of a group
to the baseline (paired by seed where the arms share seeds, else Welch), Holm's correction over the
comparisons, how many replicates would resolve a difference, and whether a replicate had finished
training (`convergence`). scipy.stats does the arithmetic.

A replicate is one training of a trial with its own seed (`search.repeats` of them per trial, seeds
`seed x 100 + index`); trials logged before replicates were recorded count as one, by their search seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from search.spec.schema import Convergence

LEVEL = 0.95  # every interval is a 95% interval
ALPHA = 0.05  # a difference is resolved when its Holm-corrected p is below this
# (z_0.975 + z_0.80)^2 = 7.85: replicates per arm = 8 (s/d)^2 resolve d at 80% power, s the sd of one difference
POWER_FACTOR = 8
MIN_PAIRS = 2  # fewer shared seeds than this cannot carry a paired test: the arms are compared by Welch


@dataclass(frozen=True)
class Summary:
    """n replicates, their mean and sample std, and the Student-t interval of the mean (none at n = 1)."""

    n: int
    mean: float
    std: float
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """A group minus the baseline, in the metric's units: the test that compared them (`paired` or
    `welch`), the replicates behind it (pairs, or the smaller arm), the interval, the uncorrected p and
    the replicates per arm that would resolve this difference (None where it is 0 or has no spread)."""

    test: str
    n: int
    diff: float
    low: float
    high: float
    p: float
    needed: int | None


def convergence(losses, classes: int, rule: Convergence) -> dict[str, float]:
    """`loss_slope`: the slope of the training loss per epoch, fitted over the last `rule.window` epochs;
    `converged` (1 or 0): whether it falls by at most `rule.tolerance` x ln(classes) per epoch, the scale
    of a uniform guess's loss, so that one tolerance reads the same for 2 or 100 classes. Fewer epochs
    than the window show no plateau: not converged (the slope over the epochs there are, unknown for one)."""
    window = np.asarray(losses[-rule.window :], dtype=float)
    if len(window) < 2:
        return {"loss_slope": math.nan, "converged": 0.0}
    slope = float(stats.linregress(np.arange(len(window)), window).slope)
    flat = -slope <= rule.tolerance * math.log(classes)
    return {"loss_slope": slope, "converged": float(flat and len(window) == rule.window)}


def summarise(values) -> Summary:
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf((1 + LEVEL) / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def difference(values, seeds, baseline_values, baseline_seeds) -> Difference:
    """`values` minus `baseline_values`. Replicates that share a seed are paired (`ttest_rel`, the
    interval from the paired differences); with fewer than two shared seeds the arms are independent
    (Welch's `ttest_ind(equal_var=False)`, the Welch-Satterthwaite interval). Several trials of one seed
    in an arm (a key left out of the grouping) are averaged into that seed's value before pairing."""
    group, base = _by_seed(values, seeds), _by_seed(baseline_values, baseline_seeds)
    shared = group.index.intersection(base.index)
    if len(shared) >= MIN_PAIRS:
        a, b = group[shared].to_numpy(), base[shared].to_numpy()
        diff = float((a - b).mean())
        spread = float((a - b).std(ddof=1))
        with _quiet():
            result = stats.ttest_rel(a, b)
            interval = result.confidence_interval(LEVEL)
        return Difference("paired", len(shared), diff, float(interval.low), float(interval.high), float(result.pvalue), needed(spread, diff))
    a, b = np.asarray(values, dtype=float), np.asarray(baseline_values, dtype=float)
    diff = float(a.mean() - b.mean())
    n = min(len(a), len(b))
    pooled = _pooled_std(a, b)
    spread = pooled * math.sqrt(2)  # the sd of one unpaired difference (one replicate of each arm)
    if n < 2:  # an arm of one replicate has no variance: Welch cannot be computed
        return Difference("welch", n, diff, math.nan, math.nan, math.nan, needed(spread, diff))
    with _quiet():
        result = stats.ttest_ind(a, b, equal_var=False)
        interval = result.confidence_interval(LEVEL)
    return Difference("welch", n, diff, float(interval.low), float(interval.high), float(result.pvalue), needed(spread, diff))


def needed(spread: float, diff: float) -> int | None:
    """Replicates per arm that resolve `diff` at 80% power, n = 8 (s/d)^2 rounded up, s the sd of one
    difference; at least 2 (no t-test runs on fewer). None where d is 0 or s is unknown."""
    if diff == 0 or not math.isfinite(spread) or not math.isfinite(diff):
        return None
    return max(MIN_PAIRS, math.ceil(POWER_FACTOR * (spread / diff) ** 2))


def holm(p_values) -> np.ndarray:
    """Holm's step-down correction over the comparisons that have a p-value (NaN stays NaN): the k-th
    smallest of m p-values is multiplied by m - k + 1, made monotone in rank and capped at 1."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def _by_seed(values, seeds) -> pd.Series:
    """Each seed's mean value; trials without a seed cannot be paired and are left out."""
    frame = pd.DataFrame({"value": np.asarray(values, dtype=float), "seed": pd.Series(seeds, dtype=object).to_numpy()})
    return frame.dropna(subset=["seed"]).groupby("seed")["value"].mean()


def _pooled_std(a: np.ndarray, b: np.ndarray) -> float:
    dof = len(a) + len(b) - 2
    if dof < 1:
        return math.nan
    squares = (len(a) - 1) * (a.var(ddof=1) if len(a) > 1 else 0.0) + (len(b) - 1) * (b.var(ddof=1) if len(b) > 1 else 0.0)
    return math.sqrt(squares / dof)


@contextmanager
def _quiet() -> Iterator[None]:
    """Arms without spread give scipy 0/0 (a NaN p, reported as not resolved) and a RuntimeWarning
    that says nothing more."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
