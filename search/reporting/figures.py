"""Comparison figures for reports (matplotlib, no display needed): learning curves, metric by axis with
error bars over repeats, and metric against cost with the Pareto front; groups with a replicate that had
not converged are ringed. Each returns its Figure, so
callers save it in the formats they want and tests can count its series. Figures are made without pyplot,
so no backend is chosen and no window can open; nothing global is set."""

from __future__ import annotations

import itertools

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from search.reporting.tables import Comparison
from search.spec.genotypes import Genotype

STYLES = ("-", "--", ":", "-.")


def _label(keys: list[str], values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values) if not pd.isna(v) and v != "-") or "all trials"


def _missing_as_dash(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Groups that lack a key (a baseline has no `cells_strategy`) keep their own line, labelled without it."""
    frame = frame.copy()
    for key in keys:
        if frame[key].isna().any():
            frame[key] = frame[key].astype(object).where(frame[key].notna(), "-")
    return frame


UNCONVERGED = {"marker": "o", "s": 140, "facecolors": "none", "edgecolors": "black", "linewidths": 1.2, "zorder": 3}


def _unconverged(table: pd.DataFrame) -> pd.Series:
    """Groups holding a replicate that had not converged (unknown counts as converged: nothing to mark)."""
    return table["converged"].notna() & (table["converged"] < table["n"])


def learning_curves(curves: pd.DataFrame, trials: pd.DataFrame, keys: list[str]) -> Figure:
    """Training and validation error (1 - accuracy) per epoch, one line per group (mean over its
    repeats): colour by the first key, line style by the second, as in He et al.'s Fig. 6."""
    figure = Figure(figsize=(11, 4.2))
    train_ax, val_ax = figure.subplots(1, 2, sharey=True)
    trials = _missing_as_dash(trials, keys)
    merged = curves.merge(trials[["run_id", *keys]], on="run_id")
    first = sorted(trials[keys[0]].dropna().unique(), key=str) if keys else [None]
    colours = dict(zip(first, itertools.cycle(matplotlib.rcParams["axes.prop_cycle"].by_key()["color"])))
    second = sorted(trials[keys[1]].dropna().unique(), key=str) if len(keys) > 1 else [None]
    styles = dict(zip(second, itertools.cycle(STYLES)))
    groups = merged.groupby(keys, sort=True) if keys else [((), merged)]
    for group_values, group in groups:
        values = group_values if isinstance(group_values, tuple) else (group_values,)
        style = {
            "color": colours[values[0]] if keys else None,
            "linestyle": styles[values[1]] if len(keys) > 1 else "-",
            "label": _label(keys, values),
        }
        for axis, metric in ((train_ax, "accuracy"), (val_ax, "val_accuracy")):
            mean = group[group["key"] == metric].groupby("step")["value"].mean()
            if not mean.empty:
                axis.plot(mean.index, 1 - mean.to_numpy(), **style)
    for axis, title in ((train_ax, "training error"), (val_ax, "validation error")):
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    train_ax.set_ylabel("error (1 - accuracy)")
    train_ax.legend(fontsize="small")
    figure.tight_layout()
    return figure


def metric_by_axis(comparison: Comparison) -> Figure:
    """The metric against the first grouping key (numeric keys on a numeric axis), one series per
    combination of the other keys, error bars = std over repeats."""
    keys = comparison.keys
    x_key, series_keys = (keys[0], keys[1:]) if keys else (None, [])
    table = _missing_as_dash(comparison.table, series_keys)
    figure = Figure(figsize=(6.5, 4.2))
    axis = figure.subplots()
    numeric_x = x_key is not None and pd.api.types.is_numeric_dtype(table[x_key])
    categories = sorted(table[x_key].unique(), key=lambda v: (str(type(v)), v)) if x_key else [0]
    groups = table.groupby(series_keys, sort=True) if series_keys else [((), table)]
    for values, group in groups:
        group = group.sort_values(x_key) if x_key else group
        xs = group[x_key].to_numpy() if numeric_x else [categories.index(v) for v in group[x_key]] if x_key else [0]
        axis.errorbar(xs, group["mean"], yerr=group["std"].fillna(0), marker="o", capsize=3, label=_label(series_keys, values))
        ringed = _unconverged(group).to_numpy()
        if ringed.any():
            axis.scatter(np.asarray(xs)[ringed], group["mean"].to_numpy()[ringed], **UNCONVERGED, label=_ring_label(axis))
    if x_key and not numeric_x:
        axis.set_xticks(range(len(categories)), [str(c) for c in categories])
    axis.set_xlabel(x_key or "")
    axis.set_ylabel(f"{comparison.metric} (mean ± std)")
    axis.grid(alpha=0.3)
    if series_keys or _unconverged(table).any():
        axis.legend(fontsize="small")
    figure.tight_layout()
    return figure


def _ring_label(axis) -> str:
    """"not converged" once per axis, for the legend."""
    return "_nolegend_" if any(c.get_label() == "not converged" for c in axis.collections) else "not converged"


def pareto_front(costs: np.ndarray, scores: np.ndarray, maximise: bool) -> np.ndarray:
    """Indices of the points no other point beats on both cost (lower) and score, by increasing cost."""
    sign = 1 if maximise else -1
    order = np.lexsort((-sign * scores, costs))
    front, best = [], -np.inf
    for index in order:
        if sign * scores[index] > best:
            front.append(index)
            best = sign * scores[index]
    return np.array(front, dtype=int)


def metric_vs_cost(comparison: Comparison) -> Figure:
    """The metric against parameters and against FLOPs, each group a point, the Pareto front a line."""
    table = comparison.table.dropna(subset=["mean"])
    figure = Figure(figsize=(11, 4.2))
    axes = figure.subplots(1, 2, sharey=True)
    for axis, cost in zip(axes, ("params", "flops")):
        costs, scores = table[cost].to_numpy(dtype=float), table["mean"].to_numpy(dtype=float)
        axis.scatter(costs, scores, color="tab:blue", label="groups")
        for x, y, label in zip(costs, scores, (_label(comparison.keys, tuple(r)) for r in table[comparison.keys].itertuples(index=False))):
            axis.annotate(label, (x, y), fontsize=6, alpha=0.7, xytext=(3, 3), textcoords="offset points")
        ringed = _unconverged(table).to_numpy()
        if ringed.any():
            axis.scatter(costs[ringed], scores[ringed], **UNCONVERGED, label="not converged")
        front = pareto_front(costs, scores, comparison.maximise)
        axis.plot(costs[front], scores[front], color="tab:red", marker="o", label="Pareto front")
        axis.set_xscale("log")
        axis.set_xlabel(cost)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(comparison.metric)
    axes[0].legend(fontsize="small")
    figure.tight_layout()
    return figure


def genotype_figure(genotype: Genotype) -> Figure:
    """The normal and the reduction cell as small graphs: inputs 0 and 1 on the left, one node per block
    fed by its two ops (boxes), and the concatenation of the unused blocks on the right."""
    blocks = len(genotype.normal)
    figure = Figure(figsize=(2.5 + 2.0 * blocks, 6.0))
    axes = figure.subplots(2, 1)
    for ax, kind in zip(axes, ("normal", "reduce")):
        cell = genotype.cell(kind)
        position = {0: (0.0, 0.6), 1: (0.0, -0.6)}
        for b in range(len(cell)):
            position[b + 2] = (2.0 * (b + 1), 1.0 if b % 2 == 0 else -1.0)
        output = (2.0 * (len(cell) + 1), 0.0)
        for b, block in enumerate(cell):
            x, y = position[b + 2]
            for state, op, offset in zip(block.inputs, block.ops, (0.35, -0.35)):
                box = (x - 0.8, y + offset)
                _arrow(ax, position[state], box)
                _arrow(ax, box, (x, y))
                _node(ax, box, op, "white", 7)
        for state in Genotype.unused(cell):
            _arrow(ax, position[state], output)
        for state, point in position.items():
            _node(ax, point, f"in {state}" if state < 2 else str(state), "#dbe9f6" if state < 2 else "#f6e7c1", 9)
        _node(ax, output, "concat", "#d5ecd4", 9)
        ax.set_title(f"{kind} cell", fontsize=10)
        ax.set_xlim(-0.7, output[0] + 0.8)
        ax.set_ylim(-1.6, 1.6)
        ax.axis("off")
    figure.tight_layout()
    return figure


def _node(ax, point: tuple[float, float], text: str, colour: str, size: int) -> None:
    ax.text(*point, text, ha="center", va="center", fontsize=size, zorder=3, bbox={"boxstyle": "round", "facecolor": colour})


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, zorder=1,
                arrowprops={"arrowstyle": "->", "color": "#777", "shrinkA": 10, "shrinkB": 10, "linewidth": 0.8})
