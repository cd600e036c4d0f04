"""A report folder's index pages (`index.md`, `index.html`): the comparison table and the figures together."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from search.reporting.ensembles import CAPTION as ENSEMBLES_CAPTION
from search.reporting.ensembles import ensembles_html, ensembles_markdown
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


def write_figures(out: Path, images: dict[str, dict[str, bytes]]) -> list[Path]:
    """Each figure's rendered bytes (name -> format -> bytes) as `name.format` beside the index pages."""
    written = []
    for name, formats in images.items():
        for fmt, data in formats.items():
            (out / f"{name}.{fmt}").write_bytes(data)
            written.append(out / f"{name}.{fmt}")
    return written


def caption_for(comparison: Comparison, fmt: str = "markdown") -> str:
    """What the table's numbers are, so that a reader of the page need not guess the test or the bold:
    Markdown (column names as `code`) or HTML (escaped, column names as <code>, no backtick left)."""
    template = _caption_template(comparison)
    fields = {"metric": comparison.metric, "ranked_by": comparison.ranked_by, "baseline": comparison.baseline or "",
              "chosen": ", ".join(comparison.chosen)}
    if fmt == "markdown":
        return template.format(**fields)
    marked = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(template))  # the template's own spans only
    return marked.format(**{name: html.escape(value) for name, value in fields.items()})


def _caption_template(comparison: Comparison) -> str:
    """The caption with `code` spans for column names and {fields} for the comparison's own (user) words,
    which are filled in after the markup so that they can never become markup."""
    against = "the baseline {baseline}" if comparison.baseline else "the baseline"
    direction = "higher" if comparison.maximise else "lower"
    return (
        f"`{{metric}}` ({direction} is better): mean ± std and 95% interval of the mean over `n` replicates "
        "(every replicate of the finished trials, each with its own seed; `converged`: how many had reached a "
        "training-loss plateau). "
        + ("Rows are ordered, and the default baseline chosen, by `{ranked_by}`, the validation score "
           "that selected the epochs, so that no choice rests on the test part. " if comparison.ranked_by != comparison.metric else "")
        + f"Each group is compared with {against}: the difference (group minus baseline) and its 95% interval, "
        "paired by replicate seed where at least two seeds are shared, else Welch (`test`); `p (Holm)` corrected "
        "over the comparisons. A `verdict` is given only where the corrected p < 0.05, else 'not resolved (n=K)', "
        "and says 'not converged' where it rests on a replicate still improving; `needed` is the "
        "replicates per arm that would resolve the observed difference at 80% power. "
        "Bold only on a baseline resolved better than every other group, never on a larger mean alone. "
        "Failed trials are counted in `failed`."
        + (" {chosen} chosen per group on validation, then reported as above." if comparison.chosen else "")
    )


# Nothing in the page may fetch or run anything: its images are data, its styles its own.
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}")


def write_ensembles(out: Path, table: pd.DataFrame) -> list[Path]:
    """`ensembles.md` and `.csv`: each ensemble beside its members (`search.reporting.ensembles`)."""
    (out / "ensembles.md").write_text(f"{ENSEMBLES_CAPTION}\n\n{ensembles_markdown(table)}\n")
    (out / "ensembles.csv").write_text(table.to_csv(index=False))
    return [out / "ensembles.md", out / "ensembles.csv"]


def write_indexes(out: Path, comparison: Comparison, experiments: list[str], figures: dict[str, bytes], cols,
                  ensembles: pd.DataFrame | None = None) -> list[Path]:
    """`index.md` (figures linked beside it) and `index.html`, self-contained: each figure's PNG (`figures`,
    the bytes of the file written beside it) is embedded as a data URI, because MLflow's artifact viewer, a
    mail attachment or a copied page cannot follow a relative link. `ensembles`: a section of them, if any."""
    has_ensembles = ensembles is not None and not ensembles.empty
    title = f"Comparison: {', '.join(experiments)}"
    pivoted = f"By {', '.join(cols)} across columns: the metric cells only (mean ± std, n, failed, bold as below)." if cols else ""
    markdown = [f"# {title}", "", caption_for(comparison), ""]
    if cols:
        markdown += [pivoted, "", render(comparison, "markdown", cols), "", "Every column:", ""]
    markdown += [render(comparison, "markdown"), ""]
    if has_ensembles:
        markdown += ["## Ensembles", "", ENSEMBLES_CAPTION, "", ensembles_markdown(ensembles), ""]
    markdown += [f"![{name}]({name}.png)\n" for name in figures]
    markdown += ["Tables: " + ", ".join(f"[{fmt}]({name})" for fmt, name in TABLE_FILES.items()), ""]
    markdown_index, html_index = (out / name for name in INDEX_FILES)
    markdown_index.write_text("\n".join(markdown))
    beside = ", ".join([*TABLE_FILES.values(), *(f"{name}.{fmt}" for name in figures for fmt in ("png", "svg"))])
    page = [
        "<!doctype html>",
        f'<html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{POLICY}">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{caption_for(comparison, 'html')}</p>",
        *([f"<p>{html.escape(pivoted)}</p>", render(comparison, "html", cols), "<p>Every column:</p>"] if cols else []),
        render(comparison, "html"),
        *([f"<h2>Ensembles</h2><p>{html.escape(ENSEMBLES_CAPTION)}</p>", ensembles_html(ensembles)] if has_ensembles else []),
        *(_figure_html(name, png) for name, png in figures.items()),
        f"<p>Beside this page: {html.escape(beside)}.</p>",
        "</body></html>",
    ]
    html_index.write_text("\n".join(page))
    return [markdown_index, html_index]


def _figure_html(name: str, png: bytes) -> str:
    heading = html.escape(name.replace("_", " "))
    return f'<h2>{heading}</h2><img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{heading}">'
