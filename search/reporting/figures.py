"""Comparison figures for reports (matplotlib, no display needed): learning curves, metric by axis with
error bars over repeats, and metric against cost with the Pareto front; groups with a replicate that had
not converged are ringed. Each returns its Figure, so
callers save it in the formats they want (`figure_bytes`) and tests can count its series. Figures are made without pyplot,
so no backend is chosen and no window can open; nothing global is set."""

from __future__ import annotations

import io
import itertools

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from search.reporting.axes import cost_scale, place_labels
from search.reporting.fronts import Reference, validation_front
from search.reporting.pareto import fronts
from search.reporting.tables import Comparison
from search.spec.genotypes import Genotype

STYLES = ("-", "--", ":", "-.")


def _label(keys: list[str], values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return plain(", ".join(f"{k}={v}" for k, v in zip(keys, values) if not pd.isna(v) and v != "-") or "all trials")


def plain(text) -> str:
    """User text (axis values, names) drawn as it is: a `$` would start mathtext, and `$\\frac$` would fail the draw."""
    return str(text).replace("$", r"\$")


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
    """The metric against the first grouping key, one series per combination of the other keys. Error bars
    (±1 std) only where a group has n > 1; a group of one replicate is a hollow point and the legend says
    n = 1, so no bar of zero claims a spread. A line joins points only on a numeric axis (depth): between
    categories (A, A-LRN, B; True/False) it would suggest an order and values that do not exist."""
    keys = comparison.keys
    x_key, series_keys = (keys[0], keys[1:]) if keys else (None, [])
    numeric_x = x_key is not None and _numeric(comparison.table[x_key])
    table = _missing_as_dash(comparison.table, keys if x_key and not numeric_x else series_keys)
    categories = sorted(table[x_key].unique(), key=lambda v: (str(type(v)), v)) if x_key and not numeric_x else []
    table["_series"] = table.groupby(series_keys, sort=True).ngroup() if series_keys else 0
    table = table[table["mean"].notna()].copy()
    table["_x"] = _x_positions(table, x_key, numeric_x, categories)
    figure = Figure(figsize=(6.5, 4.2), layout="constrained")
    axis = figure.subplots()
    colours = itertools.cycle(matplotlib.rcParams["axes.prop_cycle"].by_key()["color"])
    for (_, group), colour in zip(table.groupby("_series", sort=True), colours):
        group = group.sort_values("_x")
        xs, mean, several = group["_x"].to_numpy(), group["mean"].to_numpy(dtype=float), (group["n"] > 1).to_numpy()
        label = _series_label(series_keys, group.iloc[0][series_keys].tolist()) if series_keys else "_nolegend_"
        axis.plot(xs, mean, color=colour, marker="o", linestyle="-" if numeric_x else "none", label=label)
        if several.any():
            std = group["std"].to_numpy(dtype=float)
            axis.errorbar(xs[several], mean[several], yerr=std[several], fmt="none", ecolor=colour, capsize=3)
        if (~several).any():
            axis.plot(xs[~several], mean[~several], color=colour, marker="o", markerfacecolor="white", linestyle="none")
        ringed = _unconverged(group).to_numpy()
        if ringed.any():
            axis.scatter(xs[ringed], mean[ringed], **UNCONVERGED, label=_ring_label(axis))
    if categories:
        axis.set_xticks(range(len(categories)), [plain(c) for c in categories])
        axis.set_xlim(-0.5, len(categories) - 0.5)
    axis.set_xlabel(plain(x_key or ""))
    axis.set_ylabel(f"{plain(comparison.metric)} ({_spread(table['n'])})")
    axis.grid(alpha=0.3)
    handles, _ = axis.get_legend_handles_labels()
    if (table["n"] == 1).any():
        handles.append(Line2D([], [], color="grey", marker="o", markerfacecolor="white", linestyle="none", label=N_IS_ONE))
    if handles:
        axis.legend(handles=handles, fontsize="small")
    return figure


def _x_positions(table: pd.DataFrame, x_key: str | None, numeric: bool, categories: list) -> pd.Series:
    """Numbers where the axis is numeric; else the category's slot, the series present there side by side
    (0.12 apart) so that their bars do not hide each other."""
    if x_key is None:
        return pd.Series(0.0, index=table.index)
    if numeric:
        return table[x_key].astype(float)
    slot = table[x_key].map(categories.index).astype(float)
    rank = table.groupby(x_key)["_series"].rank(method="first") - 1
    count = table.groupby(x_key)["_series"].transform("size")
    return slot + (rank - (count - 1) / 2) * 0.12


def _series_label(keys: list[str], values: list) -> str:
    """A series' legend entry; one whose groups lack every series key (a baseline) says so."""
    return _label(keys, tuple(values)) if any(v != "-" for v in values) else plain(f"without {', '.join(keys)}")


N_IS_ONE = "n = 1 (one replicate: no error bar)"


def _spread(n: pd.Series) -> str:
    """What the points and bars are, for the axis label."""
    if (n > 1).all():
        return "mean ± std over replicates"
    return "n = 1: no error bars" if (n == 1).all() else "mean ± std where n > 1"


def _numeric(values: pd.Series) -> bool:
    """A numeric axis (depth, width): numbers, none missing. Booleans and text are categories."""
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) and bool(values.notna().all())


def _ring_label(axis) -> str:
    """"not converged" once per axis, for the legend."""
    return "_nolegend_" if any(c.get_label() == "not converged" for c in axis.collections) else "not converged"


def pareto_front(costs: np.ndarray, scores: np.ndarray, maximise: bool) -> np.ndarray:
    """Indices of the points no other point beats on both cost (lower) and score, by increasing cost."""
    first = fronts(np.column_stack([costs, (-1 if maximise else 1) * np.asarray(scores, dtype=float)]))
    front = first[0] if first else np.array([], dtype=int)
    return front[np.argsort(np.asarray(costs, dtype=float)[front], kind="stable")]


def metric_vs_cost(comparison: Comparison) -> Figure:
    """The metric against parameters and against FLOPs, each group a labelled point, the Pareto front a line.
    Costs spanning less than a decade get a linear axis with k/M/G ticks (a log axis over 12.719M-12.723M
    has no readable tick); labels are placed apart from each other and inside the axes; the legend sits
    outside them."""
    table = comparison.table.dropna(subset=["mean"])
    figure = Figure(figsize=(11, 4.6), layout="constrained")
    canvas = FigureCanvasAgg(figure)  # a renderer to measure the labels with; no backend is chosen
    axes = figure.subplots(1, 2, sharey=True)
    labels = [_label(comparison.keys, tuple(r)) for r in table[comparison.keys].itertuples(index=False)]
    points = []
    for axis, cost in zip(axes, ("params", "flops")):
        costs, scores = table[cost].to_numpy(dtype=float), table["mean"].to_numpy(dtype=float)
        known = np.isfinite(costs)
        costs, scores, ringed = costs[known], scores[known], _unconverged(table).to_numpy()[known]
        axis.scatter(costs, scores, color="tab:blue", label="groups", zorder=2)
        if ringed.any():
            axis.scatter(costs[ringed], scores[ringed], **UNCONVERGED, label="not converged")
        front = pareto_front(costs, scores, comparison.maximise)
        axis.plot(costs[front], scores[front], color="tab:red", marker="o", label="Pareto front", zorder=2)
        cost_scale(axis, costs)
        axis.margins(x=0.08, y=0.12)
        axis.set_xlabel(cost)
        axis.grid(alpha=0.3)
        front_line = np.column_stack([costs[front], scores[front]])
        points.append((axis, costs, scores, [label for label, k in zip(labels, known) if k], front_line))
    axes[0].set_ylabel(plain(comparison.metric))
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="outside upper center", ncols=len(handles), fontsize="small", frameon=False)
    figure.draw_without_rendering()  # the constrained layout settles the axes; then it is kept as it is
    figure.set_layout_engine("none")
    renderer = canvas.get_renderer()
    for axis, costs, scores, texts, line in points:
        place_labels(axis, costs, scores, texts, line, renderer)
    return figure


def search_fronts(trials: pd.DataFrame, reference: Reference, cost: str) -> Figure:
    """For each seed, every trial of every search in (judged cost, test accuracy), each search's validation
    front as a line (chosen on validation, so not monotone on test), the reference cost as a dotted line."""
    seeds = sorted(trials["seed"].unique())
    figure = Figure(figsize=(3.4 * len(seeds), 3.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(seeds), sharey=True))
    colours = dict(zip(dict.fromkeys(trials["search"]), itertools.cycle(matplotlib.rcParams["axes.prop_cycle"].by_key()["color"])))
    for axis, seed in zip(axes, seeds):
        for search, colour in colours.items():
            mine = trials[(trials["seed"] == seed) & (trials["search"] == search)]
            axis.scatter(mine["judged_cost"], mine["test_accuracy"], color=colour, s=14, alpha=0.5, label=plain(search))
            front = validation_front(mine).sort_values("judged_cost")
            axis.plot(front["judged_cost"], front["test_accuracy"], color=colour, marker="o", markersize=4,
                      label=f"{plain(search)}: validation front")
        axis.axvline(reference.cost, color="black", linewidth=0.8, linestyle=":", label="reference cost")
        axis.set_title(f"seed {seed}", fontsize="medium")
        axis.set_xlabel(plain(cost))
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="outside upper center", ncols=min(len(handles), 5), fontsize="small", frameon=False)
    return figure


def volume_curves(curves: dict[tuple[str, int], list[float]]) -> Figure:
    """Each search's test hypervolume after each trial: the median over seeds, the range shaded."""
    figure = Figure(figsize=(6, 4), layout="constrained")
    axis = figure.subplots()
    for search in dict.fromkeys(s for s, _ in curves):
        rows = [curve for (s, _), curve in curves.items() if s == search and curve]
        length = min(map(len, rows))  # a search that finished fewer trials shortens its curve
        values = np.array([row[:length] for row in rows])
        steps = np.arange(1, length + 1)
        line, = axis.plot(steps, np.median(values, axis=0), label=f"{plain(search)} (median of {len(rows)} seeds)")
        axis.fill_between(steps, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("trials finished")
    axis.set_ylabel("hypervolume of the validation front, on test")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return figure


def figure_bytes(figure: Figure, fmt: str) -> bytes:
    """The figure as PNG or SVG, cropped to what is drawn (nothing clipped at the edge)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight")
    return buffer.getvalue()


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
