"""Searches compared by what each answers: its validation front, judged on data the search never chose on.

A multi-objective search's answer is its validation front, the trials no other trial of the search beats in
validation accuracy and cost. Its worth is the hypervolume of the same trials' (test accuracy, cost) points,
measured from one reference point for the whole study (so no search's choices move the yardstick) and divided
by the area of the box between the reference and a perfect net at no cost. Searches are paired by seed
against a baseline search: the mean paired difference, its t interval and `ttest_rel`
(`search.reporting.statistics.difference`).

`trials` holds one row per finished trial: `search`, `seed`, `trial` (its order in the search, from 1),
`architecture` (what identifies the net, to find the trials two searches share), `val_accuracy`,
`test_accuracy`, `cost` (as the search measured it) and `judged_cost` (as the comparison measures it: the
latency re-timed in one process, or the same as `cost` for a count such as params).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from search.reporting.pareto import fronts, hypervolume
from search.reporting.statistics import ALPHA, Difference, Summary, difference, summarise


@dataclass(frozen=True)
class Reference:
    """The study's reference point: accuracy to beat, cost not to exceed; and what fixed the cost."""

    accuracy: float
    cost: float
    note: str

    def volume(self, accuracy: np.ndarray, cost: np.ndarray) -> float:
        """The normalised hypervolume of (accuracy, cost) points: 1 would be a perfect net at no cost."""
        points = np.column_stack([-np.asarray(accuracy, dtype=float), np.asarray(cost, dtype=float)])
        area = hypervolume(points, np.array([-self.accuracy, self.cost]))
        return area / ((1 - self.accuracy) * self.cost)


def study_reference(trials: pd.DataFrame, searches: int, accuracy: float, factor: float) -> Reference:
    """`factor` x the costliest architecture that all `searches` of the first seed share (its median judged
    cost over the times it was measured); where they share none, the costliest of the first seed's trials.
    Shared trials are the ones no strategy has steered yet (the searches' common random start), so no
    strategy's choices fix the point its front is measured from."""
    seed = trials["seed"].min()
    first = trials[trials["seed"] == seed]
    costs = first.groupby("architecture")["judged_cost"].median()
    shared = first.groupby("architecture")["search"].nunique() == searches
    basis = costs[shared] if shared.any() else costs
    which = f"the {len(basis)} architectures the searches of seed {seed} share" if shared.any() \
        else f"the architectures of seed {seed} (its searches share none)"
    return Reference(accuracy, factor * float(basis.max()), f"{factor:g} x the costliest of {which}")


def validation_front(search: pd.DataFrame) -> pd.DataFrame:
    """The trials of one search that no other of its trials beats in validation accuracy and (search-time) cost."""
    points = np.column_stack([-search["val_accuracy"].to_numpy(dtype=float), search["cost"].to_numpy(dtype=float)])
    found = fronts(points)  # none where no trial has both figures
    return search.iloc[found[0]] if found else search.iloc[:0]


def front_volume(search: pd.DataFrame, reference: Reference, accuracy: str = "test_accuracy") -> float:
    front = validation_front(search)
    return reference.volume(front[accuracy], front["judged_cost"])


def volume_curve(search: pd.DataFrame, reference: Reference) -> list[float]:
    """After each trial, the test hypervolume of the validation front of the trials so far."""
    ordered = search.sort_values("trial", kind="stable")
    return [front_volume(ordered.iloc[:count], reference) for count in range(1, len(ordered) + 1)]


@dataclass(frozen=True)
class FrontComparison:
    reference: Reference
    baseline: str
    runs: pd.DataFrame  # one row per search and seed: trials, front size, hypervolumes, search_hours
    curves: dict[tuple[str, int], list[float]]
    summaries: dict[str, dict[str, Summary]]  # search -> measure -> summary over seeds
    differences: dict[str, dict[str, Difference]]  # search (not the baseline) -> measure -> paired difference
    reached: dict[str, dict[int, int | None]]  # search -> seed -> first trial whose curve reaches the baseline's final value

    def verdict(self, search: str, measure: str = "hypervolume") -> str:
        found = self.differences[search][measure]
        if found.test != "paired" or not math.isfinite(found.low):
            return f"not resolved ({found.n} seeds shared with the baseline)"
        if found.low > 0 or found.high < 0:
            return "better" if found.diff > 0 else "worse"
        trials = self.runs.loc[self.runs["search"] == search, "trials"]
        return f"not resolved at n = {found.n} ({int(trials.median())} trials per search)"


MEASURES = ("hypervolume", "validation_hypervolume", "search_hours")


def compare_fronts(trials: pd.DataFrame, hours: pd.DataFrame, baseline: str, reference: Reference) -> FrontComparison:
    """Each search's front at each seed, measured from `reference`, and every other search against `baseline`,
    paired by seed. `hours`: `search`, `seed`, `search_hours` of each search run, one row for every search and
    seed compared (one that finished no trial found nothing: its hypervolume is 0)."""
    rows, curves = [], {}
    for run in hours.itertuples():
        group = trials[(trials["search"] == run.search) & (trials["seed"] == run.seed)]
        front = validation_front(group)
        curves[(run.search, run.seed)] = volume_curve(group, reference)
        rows.append({"search": run.search, "seed": int(run.seed), "trials": len(group), "front": len(front),
                     "hypervolume": front_volume(group, reference),
                     "validation_hypervolume": front_volume(group, reference, accuracy="val_accuracy"),
                     "front_cost": float(front["cost"].median()), "front_judged_cost": float(front["judged_cost"].median()),
                     "search_hours": float(run.search_hours)})
    runs = pd.DataFrame(rows)
    searches = list(dict.fromkeys(runs["search"]))
    summaries = {s: {m: summarise(runs.loc[runs["search"] == s, m].dropna()) for m in MEASURES} for s in searches}
    base = runs[runs["search"] == baseline]
    differences, reached = {}, {}
    for search in searches:
        if search == baseline:
            continue
        mine = runs[runs["search"] == search]
        differences[search] = {m: difference(mine[m], mine["seed"], base[m], base["seed"], alpha=ALPHA) for m in MEASURES}
        reached[search] = {}
        for seed in sorted(set(mine["seed"]) & set(base["seed"])):
            target, curve = curves[(baseline, seed)][-1], curves[(search, seed)]
            reached[search][seed] = next((i + 1 for i, value in enumerate(curve) if value >= target), None)
    return FrontComparison(reference, baseline, runs, curves, summaries, differences, reached)


def render_fronts(comparison: FrontComparison, question: str, cost: str, judged: str) -> str:
    """The comparison as Markdown: the question, the reference, the primary table, each seed, the secondaries."""
    ref = comparison.reference
    lines = [f"# Fronts: {question}", "",
             f"Each search's answer is its validation front (trials no other trial of the search beats in validation accuracy "
             f"and {cost}); its worth is the hypervolume of those trials' (test accuracy, {cost}) points, {judged}, from one "
             f"reference for the study, accuracy {ref.accuracy:g} and {cost} {ref.cost:.4g} ({ref.note}), divided by the box "
             "between the reference and a perfect net at no cost (1 is unreachable). Paired by seed against "
             f"`{comparison.baseline}`: mean difference with a 95% t interval and a paired t-test (scipy.stats.ttest_rel).", "",
             "| search | seeds | hypervolume mean | std | 95% interval | difference | 95% interval | p | replicates needed | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for search, measures in comparison.summaries.items():
        lines.append(_row(comparison, search, measures["hypervolume"], "hypervolume", digits=4))
    lines += ["", "Secondary, without a verdict:", "",
              "| search | measure | mean | std | 95% interval | difference | 95% interval | p |", "|---|---|---|---|---|---|---|---|"]
    for search, measures in comparison.summaries.items():
        for measure in ("validation_hypervolume", "search_hours"):
            lines.append(_secondary(comparison, search, measure, measures[measure]))
    for search, seeds in comparison.reached.items():
        text = ", ".join(f"seed {seed}: " + (f"trial {trial}" if trial else f"not reached in {len(comparison.curves[(search, seed)])}")
                         for seed, trial in seeds.items())
        lines += ["", f"First trial at which `{search}`'s test hypervolume reaches `{comparison.baseline}`'s final value: {text}."]
    lines += ["", f"Each search and seed ({cost}: the median over the front's trials, as the search measured it and as judged):", "",
              f"| search | seed | trials | front | hypervolume | validation hypervolume | {cost} (search) | {cost} (judged) | search_hours |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in comparison.runs.itertuples():
        lines.append(f"| {row.search} | {row.seed} | {row.trials} | {row.front} | {row.hypervolume:.4f} | {row.validation_hypervolume:.4f} "
                     f"| {row.front_cost:.4g} | {row.front_judged_cost:.4g} | {row.search_hours:.3f} |")
    return "\n".join(lines) + "\n"


def _interval(low: float, high: float, digits: int) -> str:
    return f"[{low:.{digits}f}, {high:.{digits}f}]" if math.isfinite(low) else "-"


def _row(comparison: FrontComparison, search: str, summary: Summary, measure: str, digits: int) -> str:
    head = f"| {search} | {summary.n} | {summary.mean:.{digits}f} | {summary.std:.{digits}f} | {_interval(summary.low, summary.high, digits)}"
    if search == comparison.baseline:
        return head + " | | | | | baseline |"
    found = comparison.differences[search][measure]
    return head + (f" | {found.diff:+.{digits}f} | {_interval(found.low, found.high, digits)} | {found.p:.3g} | {found.needed or '-'} "
                   f"| {comparison.verdict(search, measure)} |")


def _secondary(comparison: FrontComparison, search: str, measure: str, summary: Summary) -> str:
    head = f"| {search} | {measure} | {summary.mean:.4f} | {summary.std:.4f} | {_interval(summary.low, summary.high, 4)}"
    if search == comparison.baseline:
        return head + " | baseline | | |"
    found = comparison.differences[search][measure]
    return head + f" | {found.diff:+.4f} | {_interval(found.low, found.high, 4)} | {found.p:.3g} |"


def fronts_json(comparison: FrontComparison) -> dict:
    """Everything the page shows, as data."""
    def plain(item) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in vars(item).items()}

    return {
        "reference": plain(comparison.reference),
        "baseline": comparison.baseline,
        "runs": comparison.runs.replace({np.nan: None}).to_dict("records"),
        "summaries": {s: {m: plain(v) for m, v in measures.items()} for s, measures in comparison.summaries.items()},
        "differences": {s: {m: plain(v) for m, v in measures.items()} for s, measures in comparison.differences.items()},
        "verdicts": {s: comparison.verdict(s) for s in comparison.differences},
        "first_trial_reaching_baseline": {s: {str(seed): trial for seed, trial in seeds.items()} for s, seeds in comparison.reached.items()},
        "curves": [{"search": s, "seed": seed, "hypervolume": curve} for (s, seed), curve in comparison.curves.items()],
    }
