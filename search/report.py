"""`archsearch compare` and `archsearch report`: MLflow runs -> comparison tables -> a report folder
(tables in every format, figures as PNG and SVG, index.md and index.html), also logged to the search's
parent run so the MLflow UI shows it."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from search.store import PARENT_TAG, read_trials, resolve_tracking_uri
from search.tables import (
    Comparison,
    compare,
    filter_trials,
    latest_searches,
    render,
    trials_frame,
)

TABLE_FILES = {"markdown": "comparison.md", "latex": "comparison.tex", "csv": "comparison.csv", "html": "comparison.html", "json": "comparison.json"}


def load_comparison(
    tracking_uri: str | None,
    experiments: list[str],
    *,
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    metric: str | None = None,
    where: str | None = None,
    top: int | None = None,
    all_searches: bool = False,
) -> tuple[Comparison, pd.DataFrame]:
    """Read the experiments' trials and compare them; returns the comparison and the trials."""
    runs = read_trials(resolve_tracking_uri(tracking_uri), experiments)
    trials = trials_frame(runs)
    trials["parent_id"] = runs.get(f"tags.{PARENT_TAG}")
    trials["start_time"] = runs["start_time"]
    if not all_searches:
        trials = latest_searches(trials)
    if where:
        trials = filter_trials(trials, where)
    return compare(trials, rows=rows, cols=cols, metric=metric, top=top), trials


def write_report(
    tracking_uri: str | None,
    experiments: list[str],
    out: Path,
    *,
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    metric: str | None = None,
    where: str | None = None,
    log_to_mlflow: bool = True,
) -> list[Path]:
    """Write the report folder; returns the files written."""
    import matplotlib.pyplot as plt

    from search import figures
    from search.tracking import log_folder, metric_histories

    uri = resolve_tracking_uri(tracking_uri)
    comparison, trials = load_comparison(uri, experiments, rows=rows, cols=cols, metric=metric, where=where)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, name in TABLE_FILES.items():
        (out / name).write_text(render(comparison, fmt, cols if fmt in ("markdown", "latex", "html") else None))
        written.append(out / name)
    finished = trials[trials["status"] == "FINISHED"]
    curves = metric_histories(uri, finished["run_id"].tolist(), ("accuracy", "val_accuracy"))
    drawn = {
        "learning_curves": figures.learning_curves(curves, finished, comparison.keys[:2]),
        "metric_by_axis": figures.metric_by_axis(comparison),
        "metric_vs_cost": figures.metric_vs_cost(comparison),
    }
    for name, figure in drawn.items():
        for suffix in ("png", "svg"):
            figure.savefig(out / f"{name}.{suffix}", dpi=150)
            written.append(out / f"{name}.{suffix}")
        plt.close(figure)
    written += _write_indexes(out, comparison, experiments, list(drawn), cols)
    if log_to_mlflow:
        for parent in latest_parents(trials):
            log_folder(uri, parent, out, "report")
    return written


def latest_parents(trials: pd.DataFrame) -> list[str]:
    """The most recent search (parent run) of each experiment in the report."""
    latest = trials.dropna(subset=["parent_id"]).sort_values("start_time").groupby("experiment")["parent_id"].last()
    return latest.tolist()


def _write_indexes(out: Path, comparison: Comparison, experiments: list[str], figure_names: list[str], cols) -> list[Path]:
    title = f"Comparison: {', '.join(experiments)}"
    caption = f"{comparison.metric}, mean ± std over n repeats; best in bold; failed trials counted in `failed`."
    markdown = [f"# {title}", "", caption, "", render(comparison, "markdown", cols), ""]
    markdown += [f"![{name}]({name}.png)\n" for name in figure_names]
    markdown += ["Tables: " + ", ".join(f"[{fmt}]({name})" for fmt, name in TABLE_FILES.items()), ""]
    (out / "index.md").write_text("\n".join(markdown))
    page = [
        "<!doctype html>",
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(caption)}</p>",
        render(comparison, "html", cols),
        *(f"<h2>{name.replace('_', ' ')}</h2><img src='{name}.svg' alt='{name}'>" for name in figure_names),
        "</body></html>",
    ]
    (out / "index.html").write_text("\n".join(page))
    return [out / "index.md", out / "index.html"]
