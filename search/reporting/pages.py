"""A report folder's index pages (`index.md`, `index.html`): the comparison table and the figures together."""

from __future__ import annotations

import html
from pathlib import Path

from search.reporting.tables import Comparison, render

INDEX_FILES = ("index.md", "index.html")
TABLE_FILES = {"markdown": "comparison.md", "latex": "comparison.tex", "csv": "comparison.csv", "html": "comparison.html", "json": "comparison.json"}


def write_tables(out: Path, comparison: Comparison, cols: list[str] | None) -> list[Path]:
    """The comparison in every format (`cols` pivots the formats that can show it)."""
    written = []
    for fmt, name in TABLE_FILES.items():
        (out / name).write_text(render(comparison, fmt, cols if fmt in ("markdown", "latex", "html") else None))
        written.append(out / name)
    return written


def caption_for(comparison: Comparison) -> str:
    """What the table's numbers are, so that a reader of the page need not guess the test or the bold."""
    against = f"the baseline {comparison.baseline}" if comparison.baseline else "the baseline"
    direction = "higher" if comparison.maximise else "lower"
    return (
        f"{comparison.metric} ({direction} is better): mean ± std and 95% interval of the mean over n replicates "
        "(every replicate of the finished trials, each with its own seed; converged: how many had reached a "
        "training-loss plateau). "
        + (f"Rows are ordered, and the default baseline chosen, by {comparison.ranked_by}, the validation score "
           "that selected the epochs, so that no choice rests on the test part. " if comparison.ranked_by != comparison.metric else "")
        + 
        f"Each group is compared with {against}: the difference (group minus baseline) and its 95% interval, "
        "paired by replicate seed where at least two seeds are shared, else Welch; p Holm-corrected over the comparisons. "
        "A verdict is given only where the corrected p < 0.05, else 'not resolved (n=K)', and says 'not converged' "
        "where it rests on a replicate still improving; needed is the "
        "replicates per arm that would resolve the observed difference at 80% power. "
        "Bold only on a baseline resolved better than every other group, never on a larger mean alone. "
        "Failed trials are counted in failed."
        + (f" {', '.join(comparison.chosen)} chosen per group on validation, then reported as above." if comparison.chosen else "")
    )


def write_indexes(out: Path, comparison: Comparison, experiments: list[str], figure_names: list[str], cols) -> list[Path]:
    title = f"Comparison: {', '.join(experiments)}"
    caption = caption_for(comparison)
    pivoted = f"By {', '.join(cols)} across columns: the metric cells only (mean ± std, n, failed, bold as below)." if cols else ""
    markdown = [f"# {title}", "", caption, ""]
    if cols:
        markdown += [pivoted, "", render(comparison, "markdown", cols), "", "Every column:", ""]
    markdown += [render(comparison, "markdown"), ""]
    markdown += [f"![{name}]({name}.png)\n" for name in figure_names]
    markdown += ["Tables: " + ", ".join(f"[{fmt}]({name})" for fmt, name in TABLE_FILES.items()), ""]
    markdown_index, html_index = (out / name for name in INDEX_FILES)
    markdown_index.write_text("\n".join(markdown))
    page = [
        "<!doctype html>",
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(caption)}</p>",
        *([f"<p>{html.escape(pivoted)}</p>", render(comparison, "html", cols), "<p>Every column:</p>"] if cols else []),
        render(comparison, "html"),
        *(f"<h2>{name.replace('_', ' ')}</h2><img src='{name}.svg' alt='{name}'>" for name in figure_names),
        "</body></html>",
    ]
    html_index.write_text("\n".join(page))
    return [markdown_index, html_index]
