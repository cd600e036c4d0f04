"""Trials -> comparison tables (Markdown, LaTeX, CSV, HTML, JSON). Pure pandas: no MLflow, no TensorFlow.

A comparison groups trials by axis values and aggregates the repeats in each group (several seeds,
and the executions inside each trial) as mean ± std with n. Failed trials are counted, never dropped
silently. The same code prints the ranking at the end of `archsearch run`.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

import pandas as pd

from search.errors import TableError
from search.spec.metrics import best_metric, minimised
from search.tracking.tags import VARYING_TAG

COSTS = ("params", "flops", "train_seconds")
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
    """One row per group: its keys, `mean`, `std`, `n` (finished repeats), `failed`, mean costs, `best`."""

    table: pd.DataFrame
    keys: list[str]
    metric: str
    maximise: bool


def compare(
    trials: pd.DataFrame,
    *,
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    metric: str | None = None,
    top: int | None = None,
) -> Comparison:
    """Group `trials` by `rows` (default: every axis that varied, and the experiment when there are
    several) and `cols`, and aggregate `metric` (default: the searches' objective, best epoch)."""
    keys = list(rows) if rows else default_keys(trials)
    keys += [c for c in cols or [] if c not in keys]
    metric = metric or default_metric(trials)
    for name in [*keys, metric]:
        if name not in trials:
            known = sorted(c for c in trials.columns if c not in ("run_id",))
            raise TableError(f"no column {name!r} in these trials; known: {', '.join(known)}")
    maximise = not minimised(metric)
    finished = trials[trials["status"] == "FINISHED"]
    costs = [*COSTS, SEARCH_COST] if SEARCH_COST in trials and trials[SEARCH_COST].notna().any() else list(COSTS)
    groups = []
    for key, group in trials.groupby(keys, sort=True, dropna=False) if keys else [((), trials)]:
        done = finished.loc[finished.index.intersection(group.index)]
        mean, std, n = _pooled(done, metric)
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row |= {"mean": mean, "std": std, "n": n, "failed": int((group["status"] == "FAILED").sum())}
        row |= {cost: float(done[cost].mean()) if cost in done and len(done) else math.nan for cost in costs}
        groups.append(row)
    table = pd.DataFrame(groups, columns=[*keys, "mean", "std", "n", "failed", *costs])
    table = table.sort_values("mean", ascending=not maximise, na_position="last", kind="stable").reset_index(drop=True)
    if top:
        table = table.head(top)
    table["best"] = False
    if table["mean"].notna().any():
        table.loc[0, "best"] = True
    return Comparison(table, keys, metric, maximise)


def _pooled(done: pd.DataFrame, metric: str) -> tuple[float, float, int]:
    """Mean and sample std over every repeat: the trials of the group and the executions inside each
    (a trial logs the mean of its executions and their spread as `<metric>_std`)."""
    values = done[metric].dropna() if metric in done else pd.Series(dtype=float)
    if values.empty:
        return math.nan, math.nan, 0
    if f"{metric}_std" in done and "executions_per_trial" in done:  # a mean over executions, with their spread
        counts = pd.to_numeric(done.loc[values.index, "executions_per_trial"], errors="coerce").fillna(1)
        spreads = done.loc[values.index, f"{metric}_std"].fillna(0)
    else:  # one measurement per trial (e.g. its time): each trial counts once
        counts, spreads = pd.Series(1.0, index=values.index), 0.0
    n = counts.sum()
    mean = float((values * counts).sum() / n)
    within = float(((counts - 1) * pd.Series(spreads, index=values.index) ** 2).sum())
    between = float((counts * (values - mean) ** 2).sum())
    std = math.sqrt((within + between) / (n - 1)) if n > 1 else math.nan
    return mean, std, int(n)


def default_keys(trials: pd.DataFrame) -> list[str]:
    tags = trials["varying"].dropna() if "varying" in trials else []
    keys = [axis for axis in dict.fromkeys(a for tag in tags for a in str(tag).split(",") if a) if axis in trials]
    if trials["experiment"].nunique() > 1:
        keys = ["experiment", *keys]
    return keys


def default_metric(trials: pd.DataFrame) -> str:
    objectives = trials["objective"].dropna().unique() if "objective" in trials else []
    return best_metric(objectives[0] if len(objectives) == 1 else "val_accuracy")


def render(comparison: Comparison, fmt: str, cols: list[str] | None = None) -> str:
    """The comparison as text in `fmt`; `cols` pivots those keys into columns (metric cells only)."""
    if fmt == "csv":
        return comparison.table.to_csv(index=False)
    if fmt == "json":
        records = json.loads(comparison.table.to_json(orient="records"))
        return json.dumps({"metric": comparison.metric, "maximise": comparison.maximise, "groups": records}, indent=2) + "\n"
    shown = display_frame(comparison, cols)
    if fmt == "markdown":
        return _markdown(shown)
    if fmt == "latex":
        return _latex(shown)
    if fmt == "html":
        return _html(shown)
    raise TableError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


BEST = "\0"  # marks the best cell until each format renders its own emphasis


def display_frame(comparison: Comparison, cols: list[str] | None = None) -> pd.DataFrame:
    """Text cells: `mean ± std` of the metric, human-readable costs; the best cell marked."""
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
    shown["n"] = table["n"].astype(str)
    shown["failed"] = table["failed"].astype(str)
    shown["params"] = table["params"].map(_si)
    shown["flops"] = table["flops"].map(_si)
    shown["train_seconds"] = table["train_seconds"].map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    if SEARCH_COST in table:
        shown[SEARCH_COST] = table[SEARCH_COST].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}")
    return shown


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


def _markdown(frame: pd.DataFrame) -> str:
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


def _html(frame: pd.DataFrame) -> str:
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


def ranking_frame(comparison: Comparison) -> pd.DataFrame:
    """The plain text frame (no emphasis markers) for the terminal."""
    return display_frame(comparison).map(lambda v: v.replace(BEST, " *") if isinstance(v, str) else v)
