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
POWER = 0.80  # `needed`: the replicates per arm that would resolve the observed difference this often
MAX_NEEDED = 10**6  # beyond this many replicates `needed` says "at least" this
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


def difference(values, seeds, baseline_values, baseline_seeds, alpha: float = ALPHA) -> Difference:
    """`values` minus `baseline_values`. Replicates that share a seed are paired (`ttest_rel`, the
    interval from the paired differences); with fewer than two shared seeds the arms are independent
    (Welch's `ttest_ind(equal_var=False)`, the Welch-Satterthwaite interval). Several trials of one seed
    in an arm (a key left out of the grouping) are averaged into that seed's value before pairing.
    `alpha` is the level `needed` is computed for (lower where the comparison is one of several)."""
    group, base = _by_seed(values, seeds), _by_seed(baseline_values, baseline_seeds)
    shared = group.index.intersection(base.index)
    if len(shared) >= MIN_PAIRS:
        a, b = group[shared].to_numpy(), base[shared].to_numpy()
        diff = float((a - b).mean())
        spread = float((a - b).std(ddof=1))
        with _quiet():
            result = stats.ttest_rel(a, b)
            interval = result.confidence_interval(LEVEL)
        return Difference("paired", len(shared), diff, float(interval.low), float(interval.high), float(result.pvalue), needed(spread, diff, alpha))
    a, b = np.asarray(values, dtype=float), np.asarray(baseline_values, dtype=float)
    diff = float(a.mean() - b.mean())
    n = min(len(a), len(b))
    pooled = _pooled_std(a, b)
    spread = pooled * math.sqrt(2)  # the sd of one unpaired difference (one replicate of each arm)
    if n < 2:  # an arm of one replicate has no variance: Welch cannot be computed
        return Difference("welch", n, diff, math.nan, math.nan, math.nan, needed(spread, diff, alpha))
    with _quiet():
        result = stats.ttest_ind(a, b, equal_var=False)
        interval = result.confidence_interval(LEVEL)
    return Difference("welch", n, diff, float(interval.low), float(interval.high), float(result.pvalue), needed(spread, diff, alpha))


def needed(spread: float, diff: float, alpha: float = ALPHA) -> int | None:
    """Replicates per arm that resolve `diff` with 80% power in a two-sided t-test at `alpha`, s the sd of
    one difference: the smallest n whose power, from the noncentral t distribution (n - 1 degrees of
    freedom, noncentrality d sqrt(n) / s), reaches 0.8. The rule of thumb n = 8 (s/d)^2 agrees for large n,
    but at the 5-10 replicates studies have it ignores the t distribution's heavier tails and asks for too
    few (4 where 6 are needed at d = 1.5 s). For independent arms s is the sd of one unpaired difference,
    and n - 1 degrees of freedom (Welch has more) make the count slightly cautious. At least 2; None where
    d is 0 or s is unknown."""
    if diff == 0 or not math.isfinite(spread) or not math.isfinite(diff):
        return None
    if spread == 0:
        return MIN_PAIRS
    effect = abs(diff) / spread
    # power(low) < POWER <= power(high), found by doubling then halving: the noncentral t is only evaluated
    # near the answer (a root finder over [2, MAX_NEEDED] steps to large n, where scipy's nct returns NaN)
    low, high = MIN_PAIRS - 1, MIN_PAIRS
    while _power(high, effect, alpha) < POWER:
        if high >= MAX_NEEDED:
            return MAX_NEEDED
        low, high = high, min(2 * high, MAX_NEEDED)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if _power(middle, effect, alpha) >= POWER else (middle, high)
    return high


def _power(n: int, effect: float, alpha: float) -> float:
    """The chance that a two-sided one-sample t-test of n differences with mean/sd `effect` rejects at `alpha`."""
    df, shift = n - 1, effect * math.sqrt(n)
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


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
