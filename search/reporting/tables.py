"""Trials -> comparison tables (Markdown, LaTeX, CSV, HTML, JSON). Pure pandas: no MLflow, no TensorFlow.

A comparison groups trials by axis values. A group's replicates are its finished trials' replicates,
each with its own seed (`<metric>/replicate_<i>`, `replicate_seeds`): n, mean, std and the 95% interval
of the mean, and how many had converged. Every other group is compared with a baseline (paired by seed
where they share seeds, else Welch; Holm-corrected); only a resolved difference earns a verdict or bold,
and a verdict that rests on an unconverged replicate says so. The default metric is the test part's
(`test_accuracy`) where the trials have one, else the search's objective at its best epoch. Failed trials
are counted, never dropped silently. The same code prints the ranking at the end of `archsearch run`.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from search.errors import TableError
from search.reporting.statistics import ALPHA, LEVEL, difference, holm, summarise
from search.reporting.pareto import fronts
from search.spec.metrics import COSTS, MEASURED_COSTS, best_metric, minimised
from search.tracking.tags import MODEL_TAG, VARYING_TAG

SEARCH_COST = "search_hours"  # on transferred cells: the device-hours of the search that found them
FORMATS = ("markdown", "latex", "csv", "html", "json")


def trials_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """MLflow runs (params.*, metrics.*, tags.* columns) -> one row per trial with plain column names:
    axis and setting values (numbers where they are numbers), metrics, status, experiment."""
    table = pd.DataFrame(index=runs.index)
    table["experiment"] = runs.get("experiment", "")
    table["run_id"] = runs["run_id"]
    table["status"] = runs["status"]
    for column in runs.columns:
        if column.startswith("params."):
            table[column.removeprefix("params.")] = _typed(runs[column])
    for column in runs.columns:
        if column.startswith("metrics."):
            table[column.removeprefix("metrics.")] = pd.to_numeric(runs[column], errors="coerce")
    table["varying"] = runs.get(f"tags.{VARYING_TAG}", "")
    table["run_name"] = runs.get("run_name")
    table["model"] = runs.get(f"tags.{MODEL_TAG}")  # "model" where the trial keeps its trained model
    return table.copy()


def latest_searches(trials: pd.DataFrame) -> pd.DataFrame:
    """Each space and seed counts once: the trials of its most recent search. A `--fresh` repeat or an
    edited space file starts a new search beside the old one; pooling both would count one question twice."""
    if "parent_id" not in trials or trials["parent_id"].isna().all():
        return trials
    keys = [key for key in ("experiment", "space", "seed") if key in trials]
    started = trials.groupby("parent_id")["start_time"].transform("min")
    order = trials.assign(_started=started).sort_values("_started", kind="stable")
    latest = order.groupby(keys, dropna=False)["parent_id"].last()
    return trials[trials["parent_id"].isin(latest)]


def _typed(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return numbers if numbers.notna().sum() == values.notna().sum() else values


@dataclass(frozen=True)
class Comparison:
    """One row per group: its keys, `n` (finished replicates), `mean`, `std`, `ci_low`/`ci_high`,
    `converged` (replicates that converged; NaN where unknown), `failed`,
    mean costs; against the baseline: `diff` (group minus baseline) and its interval, `test`, `p`, `p_holm`,
    `verdict`, `needed`; and `best`, set only on a baseline shown better than every other group."""

    table: pd.DataFrame
    keys: list[str]
    metric: str
    maximise: bool
    baseline: str | None = None  # the baseline group, written as --baseline takes it
    chosen: tuple[str, ...] = ()  # keys chosen per group on validation (`chosen_on_validation`)
    ranked_by: str = ""  # what orders the groups and picks the default baseline and --top (`ranking_metric`)


def compare(
    trials: pd.DataFrame,
    *,
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    metric: str | None = None,
    top: int | None = None,
    baseline: str | None = None,
    choose: list[str] | None = None,
    pareto: list[str] | None = None,
) -> Comparison:
    """Group `trials` by `rows` (default: every axis that varied, and the experiment when there are
    several) and `cols`, summarise `metric` (default: the test part's, else the searches' objective at its
    best epoch) over each group's replicates, and compare every group with `baseline` (default: the best
    group by `ranking_metric`, which also orders the rows and `top`). `choose` keys (say `learning_rate`) are picked per group on validation (`chosen_on_validation`).
    `pareto` costs (say `params`, `latency_ms`) keep only the groups no other group beats on all of them and
    on the ranking metric at once (`on_front`), and the baseline."""
    choose = list(choose or [])
    keys = [k for k in (list(rows) if rows else default_keys(trials)) if rows or k not in choose]
    keys += [c for c in cols or [] if c not in keys]
    metric = metric or default_metric(trials)
    for name in [*keys, *choose, metric]:
        if name not in trials:
            known = sorted(c for c in trials.columns if c not in ("run_id",))
            raise TableError(f"no column {name!r} in these trials; known: {', '.join(known)}")
    if set(choose) & set(keys):
        raise TableError(f"--choose {', '.join(sorted(set(choose) & set(keys)))}: a key is either grouped by or chosen, not both")
    if choose:
        trials = chosen_on_validation(trials, keys, choose)
        keys += choose  # one value per group now: shown as a column of its own
    maximise = not minimised(metric)
    finished = trials[trials["status"] == "FINISHED"]
    costs = [*COSTS, *(cost for cost in MEASURED_COSTS if cost in trials and trials[cost].notna().any())]
    every = replicate_values(finished, metric)  # indexed by trial: each group takes its trials' rows
    ranked_by = ranking_metric(trials, metric)
    ranking = every if ranked_by == metric else replicate_values(finished, ranked_by)
    groups, replicates, unconverged = [], [], []
    for key, group in trials.groupby(keys, sort=True, dropna=False) if keys else [((), trials)]:
        done = finished.loc[finished.index.intersection(group.index)]
        each = every[every.index.isin(done.index)]
        summary = summarise(each["value"])
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row |= {"mean": summary.mean, "std": summary.std, "n": summary.n, "ci_low": summary.low, "ci_high": summary.high}
        ranked = ranking.loc[ranking.index.isin(done.index), "value"]
        row[ranked_by] = float(ranked.mean()) if len(ranked) else math.nan
        known = each["converged"].dropna()
        row |= {"converged": float(known.sum()) if len(known) else math.nan, "failed": int((group["status"] == "FAILED").sum())}
        row |= {cost: float(done[cost].mean()) if cost in done and len(done) else math.nan for cost in costs}
        groups.append(row)
        replicates.append((each["value"].to_numpy(dtype=float), each["seed"].to_numpy(dtype=object)))
        unconverged.append(bool((known == 0).any()))
    rank_column = [] if ranked_by == metric else [ranked_by]
    table = pd.DataFrame(groups, columns=[*keys, "mean", "std", "n", "ci_low", "ci_high", *rank_column, "converged", "failed", *costs])
    table = table.sort_values(ranked_by if rank_column else "mean", ascending=minimised(ranked_by), na_position="last", kind="stable")
    replicates = [replicates[i] for i in table.index]
    unconverged = [unconverged[i] for i in table.index]
    table = table.reset_index(drop=True)
    base = _baseline_row(table, keys, baseline)
    label = None if base is None else _group_label(_key_text(table[keys]).loc[base], keys)
    table = _against_baseline(table, replicates, unconverged, base, maximise)
    if pareto:
        front = on_front(table, ranked_by if rank_column else "mean", not minimised(ranked_by), pareto)
        table = table.loc[front.union(pd.Index([] if base is None else [base]))]
    if top:  # the statistics stay those of every group; the baseline is always shown
        kept = table.index[:top].union(pd.Index([] if base is None else [base]))
        table = table.loc[kept]
    return Comparison(table.reset_index(drop=True), keys, metric, maximise, label, tuple(choose), ranked_by)


def on_front(table: pd.DataFrame, score: str, maximise: bool, costs: list[str]) -> pd.Index:
    """The rows of `table` on the Pareto front of `score` (ranked on validation where the metric is a test
    one, as everything chosen is) against `costs`, each minimised."""
    unknown = [c for c in costs if c not in table or not table[c].notna().any()]
    if unknown:
        known = [c for c in (*COSTS, *MEASURED_COSTS) if c in table and table[c].notna().any()]
        raise TableError(f"--pareto {', '.join(unknown)}: not a cost these trials logged; known: {', '.join(known)}")
    points = np.column_stack([(-1 if maximise else 1) * table[score].to_numpy(dtype=float), *(table[c].to_numpy(dtype=float) for c in costs)])
    first = fronts(points)
    return table.index[first[0]] if first else table.index[:0]


TEST_METRICS = ("test_accuracy", "test_loss")


def ranking_metric(trials: pd.DataFrame, metric: str) -> str:
    """What orders the groups, picks the default baseline and `--top`: the metric itself, but for a test
    metric the searches' objective at its best epoch (validation), so that no choice is made on test."""
    selection = best_metric(_objective(trials))
    return selection if metric in TEST_METRICS and selection in trials else metric


def chosen_on_validation(trials: pd.DataFrame, keys: list[str], choose: list[str]) -> pd.DataFrame:
    """In each group of `keys`, only the trials of the `choose` values whose finished trials have the best
    mean of the searches' objective at its best epoch (`best_val_accuracy`): a setting such as each arm's
    learning rate is chosen on validation, so the arm's test metric took no part in choosing it."""
    selection = best_metric(_objective(trials))
    if selection not in trials:
        raise TableError(f"--choose: the trials logged no {selection} to choose on")
    finished = trials[trials["status"] == "FINISHED"]
    kept = []
    for _, group in trials.groupby(keys, sort=False, dropna=False) if keys else [((), trials)]:
        scores = finished.loc[finished.index.intersection(group.index)].groupby(choose, dropna=False)[selection].mean().dropna()
        if scores.empty:
            kept.append(group)
            continue
        best = scores.idxmin() if minimised(selection) else scores.idxmax()
        values = best if isinstance(best, tuple) else (best,)
        kept.append(group[(group[choose] == pd.Series(dict(zip(choose, values)))).all(axis=1)])
    return pd.concat(kept)


def _objective(trials: pd.DataFrame) -> str:
    objectives = trials["objective"].dropna().unique() if "objective" in trials else []
    return objectives[0] if len(objectives) == 1 else "val_accuracy"


BASELINE = "baseline"  # the baseline's own verdict
DIFFERENCE_COLUMNS = ("diff", "diff_low", "diff_high", "test", "p", "p_holm", "verdict", "needed")


REPLICATE_SEEDS = "replicate_seeds"  # the param listing a trial's replicate seeds, in replicate order
NOT_CONVERGED = ", not converged"  # appended to a verdict that rests on a replicate still improving


def replicate_column(metric: str, index: int) -> str:
    """The metric a trial logs for one replicate: `test_accuracy/replicate_0`."""
    return f"{metric}/replicate_{index}"


def replicate_values(done: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per replicate of the finished trials `done`: its `value` of `metric`, its `seed` and
    whether it `converged` (NaN where unknown). A trial that logged no per-replicate value of `metric`
    (a cost, or a trial from before replicates were recorded) is one replicate, by its search seed."""
    pattern = re.compile(rf"^{re.escape(metric)}/replicate_(\d+)$")
    columns = sorted((int(m.group(1)), c) for c in done.columns if (m := pattern.match(c)))
    frames, legacy = [], done
    if columns and REPLICATE_SEEDS in done:
        seeds = done[REPLICATE_SEEDS].map(_seed_list)
        for index, column in columns:
            flags = done.get(replicate_column("converged", index), pd.Series(math.nan, index=done.index))
            seed = seeds.map(lambda listed, i=index: listed[i] if i < len(listed) else math.nan)
            frames.append(pd.DataFrame({"value": done[column], "seed": seed, "converged": flags}))
        legacy = done[done[[c for _, c in columns]].isna().all(axis=1)]
    none = pd.Series(math.nan, index=legacy.index)
    frames.append(pd.DataFrame({
        "value": legacy[metric] if metric in legacy else none,
        "seed": legacy["seed"] if "seed" in legacy else none,
        "converged": legacy["converged"] if "converged" in legacy else none,
    }))
    return pd.concat(frames).dropna(subset=["value"]).astype({"seed": object})


def _seed_list(value) -> list:
    """`replicate_seeds` as logged ("100,101"; one seed reads back as a number) -> [100, 101]."""
    if pd.isna(value):
        return []
    return [int(float(seed)) for seed in str(value).split(",")]


def _against_baseline(table: pd.DataFrame, replicates: list, unconverged: list[bool], base: int | None, maximise: bool) -> pd.DataFrame:
    """Every group with a replicate against the baseline, Holm-corrected over those comparisons; the
    baseline is `best` only when every comparison is resolved in its favour. A verdict is marked when
    either arm holds a replicate that had not converged."""
    columns = {name: [math.nan] * len(table) for name in ("diff", "diff_low", "diff_high", "p")}
    tests: list = [None] * len(table)
    verdicts: list = [None] * len(table)
    needs: list = [None] * len(table)
    sizes = [0] * len(table)
    compared = [] if base is None else [i for i, (values, _) in enumerate(replicates) if i != base and len(values)]
    if base is not None:
        verdicts[base] = BASELINE
    for i in compared:  # `needed` at Holm's strictest level, alpha / m: a replicate count that resolves under the correction
        result = difference(*replicates[i], *replicates[base], alpha=ALPHA / len(compared))
        for name, value in zip(columns, (result.diff, result.low, result.high, result.p)):
            columns[name][i] = value
        tests[i], needs[i], sizes[i] = result.test, result.needed, result.n
    adjusted = holm(columns["p"])
    for i in compared:
        if adjusted[i] < ALPHA:
            gained = columns["diff"][i] > 0
            verdicts[i] = "better" if gained == maximise else "worse"
        else:
            verdicts[i] = f"not resolved (n={sizes[i]})"
        if unconverged[i] or unconverged[base]:
            verdicts[i] += NOT_CONVERGED
    table = table.assign(**columns, test=tests, p_holm=adjusted, verdict=verdicts, needed=pd.array(needs, dtype="Int64"))
    table = table[[c for c in table.columns if c not in DIFFERENCE_COLUMNS] + list(DIFFERENCE_COLUMNS)]
    table["best"] = False
    if base is not None and compared and all(verdicts[i].startswith("worse") for i in compared):
        table.loc[base, "best"] = True
    return table


def _baseline_row(table: pd.DataFrame, keys: list[str], baseline: str | None) -> int | None:
    """The row of the group `--baseline` names (matched on the grouping keys, as the table writes them),
    else the first measured row (the best by `ranking_metric`); None when no group has a finished trial."""
    if baseline is None:
        measured = table.index[table["n"] > 0]
        return int(measured[0]) if len(measured) else None
    if not keys:
        raise TableError(f"--baseline {baseline!r}: these trials form one group (no grouping keys), so there is nothing to compare")
    wanted = _parse_baseline(baseline, keys)
    text = _key_text(table[keys])
    matches = text.index[(text[list(wanted)] == pd.Series(wanted)).all(axis=1)]
    groups = [_group_label(row, keys) for _, row in text.iterrows()]
    order = table.sort_values(keys, kind="stable").index  # 8, 16, 32: by value, not as text
    if len(matches) == 0:
        raise TableError(f"--baseline {baseline!r}: no group matches; groups: {_listed([groups[i] for i in order])}")
    if len(matches) > 1:
        found = _listed([groups[i] for i in matches])
        raise TableError(f"--baseline {baseline!r} matches {len(matches)} groups ({found}): give the value of every key in {', '.join(keys)}")
    row = int(matches[0])
    if table.loc[row, "n"] == 0:
        finished = [groups[i] for i in order if table.loc[i, "n"] > 0]
        raise TableError(f"--baseline {baseline!r}: that group has no finished trial; groups with one: {_listed(finished)}")
    return row


def _parse_baseline(baseline: str, keys: list[str]) -> dict[str, str]:
    """`depth=20,residual=True` -> {key: value as the table writes it}; a comma only separates pairs
    where a `key=` follows it, so that a value may hold commas (`ops=conv,sep`)."""
    wanted: dict[str, str] = {}
    for pair in re.split(r",(?=\s*[^,=\s]+\s*=)", baseline):
        key, equals, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not key or not value:
            raise TableError(f"--baseline {baseline!r}: write the group as key=value pairs joined by commas, e.g. {_example(keys)}")
        if key not in keys:
            raise TableError(f"--baseline {baseline!r}: {key!r} is not a grouping key; keys: {', '.join(keys)}")
        if key in wanted:
            raise TableError(f"--baseline {baseline!r}: {key!r} is given twice")
        wanted[key] = value
    return wanted


def _listed(groups: list[str], most: int = 12) -> str:
    shown = "; ".join(groups[:most])
    return shown if len(groups) <= most else f"{shown}; ... ({len(groups)} in all)"


def _example(keys: list[str]) -> str:
    return ",".join(f"{key}=..." for key in keys)


def _group_label(text_row: pd.Series, keys: list[str]) -> str:
    return ",".join(f"{key}={text_row[key]}" for key in keys)


def default_keys(trials: pd.DataFrame) -> list[str]:
    tags = trials["varying"].dropna() if "varying" in trials else []
    keys = [axis for axis in dict.fromkeys(a for tag in tags for a in str(tag).split(",") if a) if axis in trials]
    if trials["experiment"].nunique() > 1:
        keys = ["experiment", *keys]
    return keys


def default_metric(trials: pd.DataFrame) -> str:
    """The test part's metric where the trials have one (`test_loss` for a loss objective), else the
    objective's best epoch: what was selected on, reported on data that took no part in selecting."""
    objective = _objective(trials)
    test = "test_loss" if minimised(objective) else "test_accuracy"
    if test in trials and trials[test].notna().any():
        return test
    return best_metric(objective)


def render(comparison: Comparison, fmt: str, cols: list[str] | None = None) -> str:
    """The comparison as text in `fmt`; `cols` pivots those keys into columns (metric cells only)."""
    if fmt == "csv":
        return comparison.table.to_csv(index=False)
    if fmt == "json":
        records = json.loads(comparison.table.to_json(orient="records"))
        header = {"metric": comparison.metric, "maximise": comparison.maximise, "ranked_by": comparison.ranked_by,
                  "baseline": comparison.baseline, "level": LEVEL, "alpha": ALPHA,
                  "chosen_on_validation": list(comparison.chosen)}
        return json.dumps(header | {"groups": records}, indent=2) + "\n"
    shown = display_frame(comparison, cols)
    if fmt == "markdown":
        return frame_markdown(shown)
    if fmt == "latex":
        return _latex(shown)
    if fmt == "html":
        return frame_html(shown)
    raise TableError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


BEST = "\0"  # marks the best cell until each format renders its own emphasis


def display_frame(comparison: Comparison, cols: list[str] | None = None) -> pd.DataFrame:
    """Text cells: `mean ± std` of the metric, n, human-readable costs, the interval of the mean and the
    comparison with the baseline; the best cell marked. Pivoted by `cols`, only the metric cells (with n)."""
    table = comparison.table
    cells = [_cell(r["mean"], r["std"]) + (BEST if r["best"] else "") for _, r in table.iterrows()]
    if cols:
        missing = [c for c in cols if c not in comparison.keys]
        if missing:
            raise TableError(f"--cols {missing} must also be grouping keys ({', '.join(comparison.keys)})")
        rows = [k for k in comparison.keys if k not in cols]
        counts = [f"n={n}" + (f", {f} failed" if f else "") for n, f in zip(table["n"], table["failed"])]
        frame = _key_text(table[comparison.keys]).assign(cell=[f"{c} ({n})" for c, n in zip(cells, counts)])
        frame = frame.loc[table.sort_values(comparison.keys, kind="stable").index]  # 8, 16, 32: by value, not as text
        pivot = frame.pivot_table(index=rows or None, columns=cols, values="cell", aggfunc="first", sort=False).fillna("-")
        pivot.columns = [" / ".join(f"{k}={v}" for k, v in zip(cols, c if isinstance(c, tuple) else (c,))) for c in pivot.columns]
        return pivot.reset_index() if rows else pivot
    shown = _key_text(table[comparison.keys])
    shown[comparison.metric] = cells
    if comparison.ranked_by and comparison.ranked_by != comparison.metric:  # what ordered the rows and chose the baseline
        shown[comparison.ranked_by] = table[comparison.ranked_by].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
    shown["n"] = table["n"].astype(str)
    if table["converged"].notna().any():  # trials that ran the convergence check
        shown["converged"] = [_converged(c, n) for c, n in zip(table["converged"], table["n"])]
    shown["failed"] = table["failed"].astype(str)
    shown["params"] = table["params"].map(_si)
    shown["flops"] = table["flops"].map(_si)
    shown["train_seconds"] = table["train_seconds"].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    for cost, digits in (("latency_ms", 2), ("latency_batch_ms", 2), (SEARCH_COST, 3)):
        if cost in table:
            shown[cost] = table[cost].map(lambda v, d=digits: "-" if pd.isna(v) else f"{v:.{d}f}")
    shown["95% CI"] = [_interval(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])]
    shown["difference (95% CI)"] = [_difference(*r) for r in zip(table["diff"], table["diff_low"], table["diff_high"])]
    shown["p"] = table["p"].map(_p)
    shown["p (Holm)"] = table["p_holm"].map(_p)
    shown["test"] = table["test"].map(_text)
    shown["verdict"] = table["verdict"].map(_text)
    shown["needed"] = table["needed"].map(_text)
    return shown


def _converged(converged: float, n: int) -> str:
    return "-" if pd.isna(converged) else f"{int(converged)}/{n}"


def _interval(low: float, high: float) -> str:
    return "-" if pd.isna(low) else f"[{low:.4f}, {high:.4f}]"


def _difference(diff: float, low: float, high: float) -> str:
    if pd.isna(diff):
        return "-"
    return f"{diff:+.4f}" if pd.isna(low) else f"{diff:+.4f} [{low:+.4f}, {high:+.4f}]"


def _p(p: float) -> str:
    if pd.isna(p):
        return "-"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def _text(value) -> str:
    return "-" if pd.isna(value) else str(value)


def _key_text(keys: pd.DataFrame) -> pd.DataFrame:
    """Key values as text: '-' where an experiment lacks the axis, whole floats without '.0'."""

    def text(value) -> str:
        if pd.isna(value):
            return "-"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return keys.map(text)


def _cell(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "-"
    return f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"


def _si(value: float) -> str:
    if pd.isna(value):
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def frame_markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_emphasis(v, "**{}**").replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "\\": r"\textbackslash{}"}


def _latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text).replace("±", r"$\pm$")


def _latex(frame: pd.DataFrame) -> str:
    spec = "l" * frame.shape[1]
    lines = [r"\begin{tabular}{" + spec + "}", r"\hline", " & ".join(_latex_escape(str(c)) for c in frame.columns) + r" \\", r"\hline"]
    for row in frame.itertuples(index=False):
        lines.append(" & ".join(_emphasis(str(v), r"\textbf{{{}}}", _latex_escape) for v in row) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def frame_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_emphasis(str(v), '<strong>{}</strong>', html.escape)}</td>" for v in row) + "</tr>\n"
        for row in frame.itertuples(index=False)
    )
    return f'<table class="comparison">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n'


def _emphasis(value, template: str, escape=lambda text: text) -> str:
    text = str(value)
    if BEST in text:
        return template.format(escape(text.replace(BEST, "")))
    return escape(text)


TERMINAL_OMITS = ("95% CI", "difference (95% CI)", "p", "p (Holm)", "test", "verdict", "needed")  # `compare` has them


def ranking_frame(comparison: Comparison) -> pd.DataFrame:
    """The plain text frame (no emphasis markers) for the terminal after a search: narrow enough for 80
    columns, so the statistics and costs but parameters are left to `archsearch compare`, the verdicts to
    `verdict_lines`, and `failed` is shown only where a trial failed."""
    omitted = [*TERMINAL_OMITS, "flops", "train_seconds", "latency_batch_ms"] + ([] if comparison.table["failed"].any() else ["failed"])
    shown = display_frame(comparison).drop(columns=omitted, errors="ignore")
    return shown.map(lambda v: v.replace(BEST, " *") if isinstance(v, str) else v)


def verdict_lines(comparison: Comparison) -> list[str]:
    """Each group's verdict against the baseline, one line each, once some group has two replicates (at one
    each, every verdict would read "not resolved (n=1)")."""
    table = comparison.table
    if comparison.baseline is None or not (table["n"] > 1).any():
        return []
    labels = _key_text(table[comparison.keys])
    lines = []
    for i, row in table.iterrows():
        if row["verdict"] in (None, BASELINE) or pd.isna(row["verdict"]):
            continue
        difference = _difference(row["diff"], row["diff_low"], row["diff_high"])
        lines.append(f"{_group_label(labels.loc[i], comparison.keys)}: {row['verdict']} "
                     f"({difference}, {row['test']}, p (Holm) {_p(row['p_holm'])})")
    return [f"against {comparison.baseline}:", *lines] if lines else []
