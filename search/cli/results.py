"""Commands that read results back: compare, report, ui."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from search.cli.app import (
    SUFFIX_FORMATS,
    ChooseOpt,
    ParetoOpt,
    ColsOpt,
    ExperimentsArg,
    MetricOpt,
    RowsOpt,
    TrackingOpt,
    WhereOpt,
    app,
    names,
)

BaselineOpt = Annotated[
    Optional[str],
    typer.Option(
        help="The group every other is compared with, written as key=value pairs over the grouping keys "
        "(e.g. depth=20,residual=True); exactly one group must match. Default: the group with the best mean.",
        show_default=False,
    ),
]


TopOpt = Annotated[Optional[int], typer.Option(help="Keep the K best groups (and the baseline).", min=1, show_default=False)]
AllSearchesOpt = Annotated[
    bool,
    typer.Option("--all-searches", help="Pool every search of a space and seed, not only the latest (a --fresh repeat or an edited space replaces the earlier search by default)."),
]


@app.command("compare")
def compare_command(
    experiments: ExperimentsArg,
    rows: RowsOpt = None,
    cols: ColsOpt = None,
    metric: MetricOpt = None,
    where: WhereOpt = None,
    top: TopOpt = None,
    baseline: BaselineOpt = None,
    choose: ChooseOpt = None,
    pareto: ParetoOpt = None,
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", help="markdown, latex, csv, html or json (default: from --out's suffix, else markdown).", show_default=False),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="Write to this new file instead of stdout (its folder must exist).", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it already exists.")] = False,
    all_searches: AllSearchesOpt = False,
    tracking_uri: TrackingOpt = None,
):
    """Compare trials grouped by axis values: n replicates (every replicate of the finished trials), mean ± std
    of the test part's accuracy (where there is one), 95% interval, converged replicates, failed trials,
    costs; each group against the baseline: difference, interval, paired or Welch p (Holm-corrected),
    verdict (noting a replicate not converged) and the replicates that would resolve it. Bold only on a
    baseline resolved better than all."""
    from search.api import compare
    from search.errors import UserError
    from search.reporting.destinations import check_table_file, write_table_file
    from search.reporting.tables import FORMATS, render

    fmt = fmt or SUFFIX_FORMATS.get(out.suffix if out else "", "markdown")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    if out:
        check_table_file(out, force=force)  # before the store is read: a refused file costs nothing
    comparison = compare(
        experiments, rows=names(rows) or None, cols=names(cols), metric=metric, where=where, top=top,
        all_searches=all_searches, baseline=baseline, choose=names(choose) or None, pareto=names(pareto) or None,
        tracking_uri=tracking_uri,
    )
    text = render(comparison, fmt, names(cols) or None)
    if out:
        write_table_file(out, text, force=force)
        typer.echo(f"wrote {out}", err=True)
    else:
        typer.echo(text, nl=False)


@app.command()
def report(
    experiments: ExperimentsArg,
    out: Annotated[Path, typer.Option(help="Folder to write the report into (made if missing).")] = Path("report"),
    rows: RowsOpt = None,
    cols: ColsOpt = None,
    metric: MetricOpt = None,
    where: WhereOpt = None,
    top: TopOpt = None,
    baseline: BaselineOpt = None,
    choose: ChooseOpt = None,
    all_searches: AllSearchesOpt = False,
    log: Annotated[bool, typer.Option(help="Also log the report to the latest search's parent run in MLflow.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Write over a report already in the --out folder.")] = False,
    tracking_uri: TrackingOpt = None,
):
    """Write tables (every format), figures (PNG + SVG) and index.md / index.html for a report."""
    from search.api import report as write_report

    written = write_report(
        experiments, out, rows=names(rows) or None, cols=names(cols) or None, metric=metric, where=where, top=top, baseline=baseline,
        choose=names(choose) or None, all_searches=all_searches, log_to_mlflow=log, force=force, tracking_uri=tracking_uri,
    )
    typer.echo(f"wrote {len(written)} files to {out}/ (open {out / 'index.html'})")


@app.command()
def ui(
    tracking_uri: TrackingOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps the UI on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 5000,
):
    """Start the MLflow UI on the project's store (./mlruns by default); once it answers, print the address of
    the latest search's runs table. Ctrl-C stops it."""
    from search.errors import UserError
    from search.tracking.locations import UI_SWITCH_HINT, masked, resolve_tracking_uri
    from search.tracking.ui_server import serve_ui

    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        raise UserError(f"{uri} is already a tracking server: open it in a browser")

    def ready(address: str, experiment: str | None) -> None:
        which = f"the runs of {experiment!r}, the latest search; " if experiment is not None else ""
        typer.echo(f"MLflow UI for {masked(uri)} at {address}  ({which}Ctrl-C to stop)")
        typer.echo(UI_SWITCH_HINT)

    serve_ui(uri, host, port, on_ready=ready, on_note=lambda line: typer.echo(line, err=True))
    typer.echo("stopped the MLflow UI", err=True)
