"""Search efficiency measured against the ground truth (benchmarks/groundtruth): each strategy replayed
through its real KerasTuner oracle, made by `search.engine.oracles.make_oracle` from the table's own space
file, with every trial's result looked up in the table instead of trained.

A repetition draws, for each candidate, one of the seeds it was trained with: what the oracle sees (the
validation accuracy at the epochs the trial trains, hyperband's rungs included; params, latency) is that
seed's. A candidate's truth is its mean over seeds. A trial costs the table's train_seconds (scaled to the
epochs it trains); a prescreen also pays for scoring what it samples, timed in this run against one epoch of training timed
beside it (a table built on another machine is charged in its own seconds).

Reported, over REPS repetitions of each strategy with the same budget of training seconds:
  - the training seconds until the search's best trial by validation is a candidate within 0.5 points of
    the space's best test accuracy (median and quartiles; a repetition that never gets there counts as
    infinite), as a ratio to random search's median;
  - for two objectives (validation accuracy and a cost), the hypervolume of the true (test accuracy, cost)
    points of what NSGA-II and random search tried after N trials, as a ratio to random's, and the trials
    NSGA-II needed to reach random's final hypervolume;
  - each proxy's Spearman rank correlation with the mean test accuracy, on every table built.

    uv run python benchmarks/replay.py [--reps 50] [--table resnet]

Resumable: each repetition's outcome is appended to mlruns/replay/<table>-<settings hash>.jsonl as it
finishes, and a run again (after a kill) replays only what is not there (a prescreen's scoring time stays the
one measured when its repetitions ran).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import keras_tuner as kt
import numpy as np
import pandas as pd
import yaml
from results import record
from scipy.stats import spearmanr
from sklearn.exceptions import ConvergenceWarning

from search.engine.hypermodel import declare
from search.engine.oracles import make_oracle
from search.reporting.pareto import hypervolume
from search.spec.schema import Space

TABLES = Path(os.environ.get("ARCHSEARCH_TRUTH", Path(__file__).with_name("groundtruth")))  # where the tables are
TARGET_POINTS = 0.5  # within this many points of the best test accuracy
BUDGET_SHARE = 0.5  # each search may spend this share of what training every candidate once costs
PARETO_TRIALS = 40
PRESCREEN = {"proxy": "jacob_cov", "keep": 0.25}  # the best proxy on the ResNet table (Spearman 0.71)
VOTE = ("synflow", "jacob_cov", "snip")  # Abdelfattah et al.'s vote: the mean of these proxies' ranks
STRATEGIES = {
    "random": {"strategy": "random"},
    "hyperband": {"strategy": "hyperband"},
    "evolution": {"strategy": "evolution", "population_size": 10, "sample_size": 3},
    "evolution + prescreen": {"strategy": "evolution", "population_size": 10, "sample_size": 3, "prescreen": PRESCREEN},
    "random + prescreen": {"strategy": "random", "prescreen": PRESCREEN},
    "bayesian": {"strategy": "bayesian"},  # last: its Gaussian process makes it by far the slowest to replay
}
DONE = Path("mlruns") / "replay"  # each repetition's outcome, so that a killed replay resumes
SCRATCH = Path("/dev/shm") if Path("/dev/shm").is_dir() else None  # the oracles' state files, written and thrown away


class Truth:
    """One ground-truth table: every candidate's rows by seed, its truth, and its proxy scores."""

    def __init__(self, name: str):
        self.name = name
        self.spec = yaml.safe_load((TABLES / f"{name}.yaml").read_text())
        self.base = Space.model_validate(self.spec)
        self.axes = self.base.varying_names()
        table = pd.read_csv(TABLES / f"{name}.csv", keep_default_na=False)
        self.epochs = self.base.training.epochs
        self.curves = [f"val_accuracy@{e}" for e in range(1, self.epochs + 1)]
        self.rows = {}
        for candidate, rows in table.groupby("candidate"):
            self.rows[candidate] = rows.to_dict("records")
        self.keys = {tuple(str(rows[0][a]) for a in self.axes): c for c, rows in self.rows.items()}
        self.test = {c: statistics.fmean(r["test_accuracy"] for r in rows) for c, rows in self.rows.items()}
        self.cost = {c: {k: statistics.median(r[k] for r in rows) for k in ("params", "latency_ms")} for c, rows in self.rows.items()}
        self.best = max(self.test.values())
        self.budget = BUDGET_SHARE * sum(statistics.fmean(r["train_seconds"] for r in rows) for rows in self.rows.values())
        proxies = TABLES / f"{name}_proxies.csv"
        self.proxies = pd.read_csv(proxies, keep_default_na=False).set_index("candidate") if proxies.exists() else None

    def space(self, options: dict, seed: int) -> Space:
        search = {"objective": "val_accuracy", "max_trials": len(self.rows), "seed": seed} | options
        return Space.model_validate(self.spec | {"search": search})

    def observe(self, candidate: int, rep: int) -> dict:
        rows = self.rows[candidate]
        return rows[random.Random(f"{rep}/{candidate}").randrange(len(rows))]

    def candidate(self, space: Space, hp: kt.HyperParameters) -> int:
        values = declare(hp.copy(), space)
        return self.keys[tuple(str(values[a]) for a in self.axes)]


class LookedUp:
    """The prescreen's scorer, from the table's proxy scores; counts what it scored."""

    def __init__(self, truth: Truth, space: Space):
        self.truth, self.space, self.proxy, self.calls = truth, space, space.search.prescreen.proxy, 0

    def __call__(self, hp: kt.HyperParameters) -> float:
        self.calls += 1
        return float(self.truth.proxies.loc[self.truth.candidate(self.space, hp), self.proxy])


def replay(truth: Truth, options: dict, rep: int, *, cost_key: str | None = None, trials: int | None = None,
           score_seconds: float = 0.0) -> list[tuple[int, float, float]]:
    """One search: (candidate, seconds spent so far, observed objective) per trial, until the budget (or
    `trials`) is spent."""
    space = truth.space(options | ({"objectives": ["val_accuracy", cost_key]} if cost_key else {}), seed=rep)
    scorer = LookedUp(truth, space) if space.search.prescreen else None
    oracle = make_oracle(space, scorer)
    oracle.verbose = 0  # KerasTuner's display of each trial
    if space.search.strategy == "hyperband":
        oracle.hyperband_iterations = 10**6  # brackets again until the budget is spent
    hp = oracle.get_space()
    declare(hp, space)
    oracle.update_space(hp)
    done, spent = [], 0.0
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        oracle._set_project_dir(folder, "replay")
        while (trials is None and spent < truth.budget) or (trials is not None and len(done) < trials):
            trial = oracle.create_trial("replay")
            if trial.status == "STOPPED":
                break
            values = trial.hyperparameters.values
            candidate = truth.candidate(space, trial.hyperparameters)
            row = truth.observe(candidate, rep)
            epochs, first = values.get("tuner/epochs", truth.epochs), values.get("tuner/initial_epoch", 0)
            observed = max(row[key] for key in truth.curves[:epochs])
            spent += row["train_seconds"] * (epochs - first) / truth.epochs
            if scorer is not None:
                spent += scorer.calls * score_seconds
                scorer.calls = 0
            oracle.update_trial(trial.trial_id, {"val_accuracy": observed} | ({cost_key: row[cost_key]} if cost_key else {}))
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
            done.append((candidate, spent, observed))
    return done


def time_to_target(truth: Truth, done: list) -> float:
    best_observed, incumbent = -math.inf, None
    for candidate, spent, observed in done:
        if observed > best_observed:
            best_observed, incumbent = observed, candidate
        if truth.test[incumbent] >= truth.best - TARGET_POINTS / 100:
            return spent
    return math.inf


def pareto_hypervolume(truth: Truth, candidates: list[int], cost_key: str) -> float:
    """Of the true (test accuracy, cost) points, in units of the table's range: 1 is the whole box."""
    costs = [truth.cost[c][cost_key] for c in truth.rows]
    low, high = min(costs), max(costs)
    worst = min(truth.test.values())
    points = np.array([[(truth.best - truth.test[c]) / (truth.best - worst), (truth.cost[c][cost_key] - low) / (high - low)]
                       for c in set(candidates)])
    return hypervolume(points, np.array([1.0, 1.0]))


def proxy_seconds(truth: Truth, proxy: str, count: int = 8) -> float:
    """Median seconds to score one candidate of the table's space with `proxy`, in the table's seconds: the
    scoring time measured here times the candidate's training seconds per epoch in the table over one epoch
    of it trained here, so a table built on a faster or slower machine is charged consistently."""
    from search import api
    from search.data import describe_input, load_data
    from search.models.proxies import score, seeded_build
    from search.models.registry import build_candidate
    from search.orchestration.plan import candidate_indices, proxy_batch
    from search.spec.schema import model_values

    api.prepare()
    space = api.load_space(TABLES / f"{truth.name}.yaml")
    x, y = proxy_batch(space)
    data = load_data(space.dataset)
    shape, classes = describe_input(space.dataset)
    charged = []
    for index in candidate_indices(space, count):
        def build():
            return seeded_build(lambda: build_candidate(space.model, model_values(space.candidate(index)), input_shape=shape, num_classes=classes), 1)

        started = time.perf_counter()
        score(build(), proxy, x, y)
        scoring = time.perf_counter() - started
        model = build()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        started = time.perf_counter()
        model.fit(data.x_train, data.y_train, batch_size=space.candidate(index)["batch_size"], epochs=1, verbose=0)
        epoch_here = time.perf_counter() - started
        epoch_in_table = statistics.fmean(row["train_seconds"] for row in truth.rows[index + 1]) / space.training.epochs
        charged.append(scoring * epoch_in_table / epoch_here)
    return statistics.median(charged)


def spearman(truth: Truth) -> dict[str, float]:
    table = truth.proxies
    accuracy = [truth.test[c] for c in table.index]
    found = {proxy: spearmanr(table[proxy], accuracy).statistic for proxy in table.columns if proxy not in truth.axes}
    ranks = sum(table[proxy].rank() for proxy in VOTE) / len(VOTE)
    return found | {"vote": spearmanr(ranks, accuracy).statistic}


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75], method="inverted_cdf")  # an infinite value stays one
    return float(q1), float(median), float(q3)


class Outcomes:
    """The repetitions already replayed, by (what, rep); a torn last line (a kill mid-write) is ignored."""

    def __init__(self, table: str, replayed_only: bool = False):
        self.replayed_only = replayed_only
        DONE.mkdir(parents=True, exist_ok=True)
        # named by everything an outcome depends on, so a changed table or setting starts afresh
        settings = json.dumps([STRATEGIES, TARGET_POINTS, BUDGET_SHARE, PARETO_TRIALS, (TABLES / f"{table}.csv").read_text()])
        self.path = DONE / f"{table}-{hashlib.sha256(settings.encode()).hexdigest()[:12]}.jsonl"
        self.found = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.found[(entry["what"], entry["rep"])] = entry["value"]

    def get(self, what: str, rep: int, compute):
        if (what, rep) not in self.found and self.replayed_only:
            return MISSING
        if (what, rep) not in self.found:
            value = compute()
            with self.path.open("a") as out:
                out.write(json.dumps({"what": what, "rep": rep, "value": value}) + "\n")
                out.flush()
                os.fsync(out.fileno())
            self.found[(what, rep)] = value
        return self.found[(what, rep)]


MISSING = object()  # a repetition not replayed, with --replayed-only


def finite(value: float | None) -> float:
    return math.inf if value is None else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--table", default="resnet")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="which to replay (random, the baseline, always is)")
    parser.add_argument("--no-pareto", dest="pareto", action="store_false", help="skip the two-objective replays")
    parser.add_argument("--replayed-only", action="store_true",
                        help="report only the repetitions already replayed (each figure says how many), replaying nothing")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # the bayesian oracle's Gaussian process, every trial
    truth = Truth(args.table)
    done = Outcomes(args.table, args.replayed_only)
    seeds = sorted({row["seed"] for rows in truth.rows.values() for row in rows})
    score_seconds = proxy_seconds(truth, PRESCREEN["proxy"])
    print(f"{args.table}: {len(truth.rows)} candidates x seeds {seeds}; best test accuracy {truth.best:.4f}; budget "
          f"{truth.budget:.0f} s; {PRESCREEN['proxy']} {score_seconds:.3f} s per candidate", flush=True)
    found = {}
    chosen = {"random", *args.strategies.split(",")}
    unknown = chosen - set(STRATEGIES)
    if unknown:
        parser.error(f"--strategies: unknown {', '.join(sorted(unknown))}; expected some of {', '.join(STRATEGIES)}")
    for name, options in STRATEGIES.items():
        if name not in chosen:
            continue
        started = time.perf_counter()

        def reached(rep: int) -> float | None:  # JSON has no infinity: a search that never got there is None
            seconds = time_to_target(truth, replay(truth, options, rep, score_seconds=score_seconds))
            return seconds if math.isfinite(seconds) else None

        outcomes = [done.get(name, rep, lambda: reached(rep)) for rep in range(1, args.reps + 1)]
        times = [finite(value) for value in outcomes if value is not MISSING]
        if not times:
            continue
        found[name] = times
        q1, median, q3 = quartiles(times)
        print(f"{name}: median {median:.0f} s [{q1:.0f}, {q3:.0f}], reached in {sum(map(math.isfinite, times))}/{len(times)} "
              f"({time.perf_counter() - started:.0f} s to replay)", flush=True)
    if "random" not in found:
        parser.error("random search, the baseline of every ratio, has no repetition replayed yet")
    random_median = quartiles(found["random"])[1]
    lines = []
    for name, times in found.items():
        q1, median, q3 = quartiles(times)
        lines.append(f"{name} {median / random_median:.2f} ({median:.0f} s [{q1:.0f}, {q3:.0f}], {sum(map(math.isfinite, times))}/{len(times)})")
    figures = [f"training seconds to a net within {TARGET_POINTS} points of the best test accuracy, median ÷ random's "
               f"(median [quartiles], reps that got there): " + ", ".join(lines)]
    for cost_key in ("params", "latency_ms") if args.pareto else ():
        volumes = {}
        for name in ("random", "nsga2"):
            options = {"strategy": name} | ({"population_size": 10} if name == "nsga2" else {})

            def curve(rep: int) -> list[float]:  # the hypervolume after each trial
                run = replay(truth, options, rep, cost_key=cost_key, trials=PARETO_TRIALS)
                return [pareto_hypervolume(truth, [c for c, _, _ in run[:n]], cost_key) for n in range(1, len(run) + 1)]

            curves = [done.get(f"{name} [val_accuracy, {cost_key}]", rep, lambda: curve(rep)) for rep in range(1, args.reps + 1)]
            volumes[name] = [c for c in curves if c is not MISSING]
        if not volumes["random"] or not volumes["nsga2"]:
            continue
        final = [v[-1] for v in volumes["random"]]
        ratio = statistics.median(n[-1] for n in volumes["nsga2"]) / statistics.median(final)
        needed = [next((i + 1 for i, v in enumerate(curve) if v >= target), math.inf) for curve, target in zip(volumes["nsga2"], final)]
        figures.append(f"[val_accuracy, {cost_key}] hypervolume after {PARETO_TRIALS} trials, NSGA-II ÷ random {ratio:.3f} (medians "
                       f"{statistics.median(n[-1] for n in volumes['nsga2']):.3f} and {statistics.median(final):.3f}); trials NSGA-II "
                       f"needs to reach random's: median {statistics.median(needed):.0f} of {PARETO_TRIALS} ({len(needed)} reps)")
        print(figures[-1], flush=True)
    for name in ("resnet", "cells"):
        if (TABLES / f"{name}_proxies.csv").exists() and (TABLES / f"{name}.csv").exists():
            rho = spearman(truth if name == args.table else Truth(name))
            figures.append(f"Spearman ρ with test accuracy, {name} ({len(Truth(name).rows)} nets): "
                           + ", ".join(f"{proxy} {value:.2f}" for proxy, value in sorted(rho.items(), key=lambda item: -item[1])))
            print(figures[-1], flush=True)
    record("search replay", "; ".join(figures),
           f"{args.table} ground truth ({len(truth.rows)} nets x {len(seeds)} seeds), {'up to ' if args.replayed_only else ''}"
           f"{args.reps} reps per strategy, budget "
           f"{truth.budget:.0f} training seconds (half of training every net once)", ("keras-tuner", "scipy"))


if __name__ == "__main__":
    main()
