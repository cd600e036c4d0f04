"""Commands that check, plan and run searches: validate, schema, plan, run, chief, worker, server,
transfer, study."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from search.cli.app import (
    FreshOpt,
    HeartbeatOpt,
    SpaceArg,
    TrackingOpt,
    TrackingTimeoutOpt,
    TunerDirOpt,
    app,
    command_prefix,
    load,
    quiet_tensorflow,
)
from search.spec.metrics import PROXIES


@app.command()
def validate(spaces: Annotated[list[Path], typer.Argument(help="One or more space files.", show_default=False)]):
    """Check space files against the schema (no TensorFlow import); exit 2 on the first bad one."""
    for path in spaces:
        space = load(path)
        typer.echo(f"ok {path}: {space.describe()}, {space.search.strategy} search")


@app.command()
def schema():
    """Print the JSON Schema of space files (point your editor's YAML plugin at it)."""
    from search.spec.schema import Space

    typer.echo(json.dumps(Space.model_json_schema(), indent=2))


def _known_proxy(value: str | None) -> str | None:
    if value is not None and value not in PROXIES:
        raise typer.BadParameter(f"{value!r} is not a proxy; known: {', '.join(PROXIES)}")
    return value


@app.command()
def plan(
    space_path: SpaceArg,
    sample: Annotated[int, typer.Option(help="Candidates to show when the grid is larger than this.", min=1)] = 24,
    score: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation
        typer.Option(
            help="Rank the candidates by a zero-cost proxy, scored untrained on one batch of the training images "
            "(higher first): synflow, jacob_cov, grad_norm, snip; params and flops are the baselines a proxy must beat.",
            callback=_known_proxy,
            show_default=False,
        ),
    ] = None,
):
    """List the candidates the search would try, with parameters and FLOPs, before anything trains."""
    space = load(space_path)
    quiet_tensorflow()
    from rich.console import Console

    from search.errors import UserError
    from search.orchestration.plan import plan_candidates
    from search.reporting.terminal import rich_table

    try:
        table, note = plan_candidates(space, sample, score)
    except UserError as error:
        raise error.at(space_path) from None
    Console().print(rich_table(table, title=f"{space.name}: {note}"))


@app.command()
def run(
    space_path: SpaceArg,
    tracking_uri: TrackingOpt = None,
    tuner_dir: TunerDirOpt = Path("mlruns") / "tuner",
    fresh: FreshOpt = False,
    workers: Annotated[
        int, typer.Option(help="Train trials in N worker processes on this machine, served by a KerasTuner chief (0: in this process).", min=0)
    ] = 0,
    heartbeat_timeout: HeartbeatOpt = 120.0,
    tracking_timeout: TrackingTimeoutOpt = 300.0,
    threads: Annotated[
        Optional[int],
        typer.Option(help="CPU threads for each trial (default: all cores here, cores / N with --workers N). The same "
                          "number gives the same results in process and on workers.", min=1, show_default=False),
    ] = None,
):
    """Run the search: every trial is a nested MLflow run under one parent run for the search.

    Running it again after an interruption (Ctrl-C, kill, restart) continues the search; a finished
    search is reported, not repeated, unless --fresh."""
    space = load(space_path)
    from rich.console import Console

    from search import api

    console = Console()
    result = _search_with_progress(
        console, space, space_path, distributed=workers > 0,
        search=lambda observer: api.run(space_path, tracking_uri=tracking_uri, tuner_dir=tuner_dir, fresh=fresh, workers=workers,
                                        observer=observer, tracking_timeout=tracking_timeout, heartbeat_timeout=heartbeat_timeout,
                                        threads=threads),
    )
    _print_result(console, space, result)


@app.command()
def chief(
    space_path: SpaceArg,
    host: Annotated[str, typer.Option(help="Address the chief listens on; 0.0.0.0 for workers on other machines.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the chief listens on.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Also start N workers on this machine.", min=0)] = 0,
    heartbeat_timeout: HeartbeatOpt = 120.0,
    tracking_uri: TrackingOpt = None,
    tuner_dir: TunerDirOpt = Path("mlruns") / "tuner",
    fresh: FreshOpt = False,
    tracking_timeout: TrackingTimeoutOpt = 300.0,
):
    """Serve a search to workers (KerasTuner's distributed chief): creates the parent run, hands out trials,
    ends when every trial is in. Start workers with `archsearch worker SPACE --chief HOST:PORT`."""
    space = load(space_path)
    quiet_tensorflow()
    from rich.console import Console

    from search.distributed.chief import check_can_listen
    from search.distributed.distribution import Distribution

    console = Console()
    check_can_listen(host, port)
    distribution = Distribution(f"{host}:{port}", workers, heartbeat_timeout)
    console.print(escape(f"chief of {space.name} listening on {host}:{port}; workers: archsearch worker {space_path} --chief HOST:{port}"))
    result = _search_with_progress(console, space, space_path, distributed=True, search=_searching(
        space, space_path, tracking_uri=tracking_uri, tuner_dir=tuner_dir, fresh=fresh, distribution=distribution,
        tracking_timeout=tracking_timeout))
    _print_result(console, space, result)


@app.command()
def worker(
    space_path: SpaceArg,
    chief_address: Annotated[str, typer.Option("--chief", help="HOST:PORT of the chief serving this space's search.", show_default=False)],
    worker_id: Annotated[
        Optional[str], typer.Option("--id", help="A name unique among the search's workers (default: host and process id).", show_default=False)
    ] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for each trial (default: all).", min=1, show_default=False)] = None,
    tracking_uri: TrackingOpt = None,
    tuner_dir: TunerDirOpt = Path("mlruns") / "tuner",
    tracking_timeout: TrackingTimeoutOpt = 300.0,
):
    """Train trials handed out by a chief, logging each to the chief's search in the same tracking store.
    Exits when the chief has no trial left."""
    import os
    import socket

    space = load(space_path)
    from search.errors import UserError

    if ":" not in chief_address or not chief_address.rpartition(":")[2].isdigit():
        raise UserError(f"--chief: expected HOST:PORT, got {chief_address!r}")
    worker_id = worker_id or f"worker-{socket.gethostname()}-{os.getpid()}"
    if "chief" in worker_id:  # KerasTuner takes any tuner id containing "chief" for the chief itself
        raise UserError(f"--id: a worker's name must not contain 'chief' (got {worker_id!r}); give one with --id")
    quiet_tensorflow(trains=True)
    from search.orchestration.worker import run_worker
    from search.reporting.progress import LineProgress

    typer.echo(f"{worker_id}: joining the search of {space.name} served by {chief_address}")
    try:
        parent_id = run_worker(space, space_path, chief_address, worker_id=worker_id, tracking_uri=tracking_uri, tuner_dir=tuner_dir,
                               threads=threads, observer=LineProgress(worker_id), tracking_timeout=tracking_timeout)
    except UserError as error:
        raise error.at(space_path) from None
    typer.echo(f"{worker_id}: no trial left in search {parent_id}; done")


@app.command()
def server(
    backend_store_uri: Annotated[
        str, typer.Option(help="sqlite:///path/mlflow.db, or postgresql://user@host/db for a team (the password in "
                               "PGPASSWORD or ~/.pgpass keeps it off the command line).")
    ] = "sqlite:///mlruns/mlflow.db",
    artifacts: Annotated[Path, typer.Option(help="Where the server keeps artifacts (clients upload through it).")] = Path("mlruns") / "artifacts",
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine, 0.0.0.0 opens it to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 5000,
):
    """Start an MLflow tracking server for chief and workers on several machines to log to
    (`--tracking-uri http://HOST:PORT` on each); it also serves the UI. Its address is printed once it
    answers; Ctrl-C stops it."""
    from search.errors import UserError
    from search.tracking.locations import UI_SWITCH_HINT, masked, sqlite_path, ui_address
    from search.tracking.ui_server import serve_tracking

    db = sqlite_path(backend_store_uri)
    if db is not None:
        from search.tracking.client import create_sqlite_store

        create_sqlite_store(db)  # built atomically: a server killed while creating it leaves no broken store
    elif not backend_store_uri.startswith(("postgresql://", "postgresql+", "mysql://", "mysql+")):
        raise UserError(f"--backend-store-uri: expected sqlite:///PATH or a postgresql:// / mysql:// URI, got {masked(backend_store_uri)!r}")
    artifacts.mkdir(parents=True, exist_ok=True)

    def ready(base: str) -> None:
        typer.echo(f"MLflow tracking server on {base} (store {masked(backend_store_uri)}, artifacts {artifacts}); "
                   f"clients: --tracking-uri {base}  (Ctrl-C to stop)")
        typer.echo(f"its UI: {ui_address(base)} ({UI_SWITCH_HINT})")

    serve_tracking(backend_store_uri, artifacts, host, port, on_ready=ready, on_note=lambda line: typer.echo(line, err=True))
    typer.echo("stopped the MLflow tracking server", err=True)


@app.command()
def transfer(
    source: Annotated[str, typer.Argument(help="The MLflow experiment of a finished cell search.", show_default=False)],
    target_path: Annotated[
        Path, typer.Argument(help="Target space file: a cells space without `genotype` (larger N and F, the target data).", show_default=False)
    ],
    top: Annotated[int, typer.Option(help="Retrain the K best distinct cells of the search.", min=1)] = 1,
    search_run: Annotated[
        Optional[str], typer.Option(help="The search's parent run id (default: the latest finished cell search in SOURCE).", show_default=False)
    ] = None,
    tracking_uri: TrackingOpt = None,
    tuner_dir: TunerDirOpt = Path("mlruns") / "tuner",
    fresh: FreshOpt = False,
):
    """Retrain the best cells of a finished cell search at a larger scale (NASNet's transfer).

    The target space sets N (cells_per_stage), F (filters), the data and the training; the cells come from
    the search. Every run links back to the trial that found its cell and carries the search's cost."""
    target = load(target_path, transfer_target=True)
    from search.errors import UserError
    from search.orchestration.transfer import best_cells, transferred_space
    from search.tracking.locations import resolve_tracking_uri

    try:
        origin = best_cells(resolve_tracking_uri(tracking_uri), source, top=top, parent_id=search_run)
        space = transferred_space(target, origin)
    except UserError as error:
        raise error.at(target_path) from None
    quiet_tensorflow(trains=True)
    from rich.console import Console

    console = Console()
    console.print(escape(f"transferring {len(origin.runs)} cell(s) from search {origin.parent_id} ({origin.space}, {origin.strategy}, "
                  f"{origin.trials} trials, {origin.search_hours:.3f} device-hours)"))
    result = _search_with_progress(console, space, target_path, search=_searching(
        space, target_path, tracking_uri=tracking_uri, tuner_dir=tuner_dir, fresh=fresh, origin=origin))
    _print_result(console, space, result)


def _print_result(console, space, result) -> None:
    """The ranked candidates and where to find them, after a search."""
    import pandas as pd

    from search.errors import ArchsearchError
    from search.reporting.tables import compare, ranking_frame, trials_frame, verdict_lines
    from search.tracking.tags import FAILURE_TAG, MODEL_TAG
    from search.reporting.terminal import rich_table

    if result.outcome == "already done":
        console.print(f"this search already ran to its end (parent run {result.parent_id}); --fresh runs it again")
    elif result.outcome == "resumed":
        console.print("continued the interrupted search; finished trials were not run again")
    if result.trials.empty:
        raise ArchsearchError(f"the search has no trial runs (parent run {result.parent_id}); --fresh starts it again")
    if not (result.trials["status"] == "FINISHED").any():
        failed = result.trials[result.trials["status"] == "FAILED"]
        reasons = failed.get(f"tags.{FAILURE_TAG}", pd.Series(dtype=object)).dropna()
        first = f"; the first reason: {reasons.iloc[0].splitlines()[0]}" if len(reasons) else ""
        raise ArchsearchError(f"no trial finished ({len(failed)} failed, parent run {result.parent_id}){first}")
    comparison = compare(trials_frame(result.trials), rows=space.varying_names())
    reported = "" if comparison.ranked_by == comparison.metric else f", reported on {comparison.metric}"
    title = f"candidates ranked by {comparison.ranked_by}{reported} (* best, resolved against every other)"
    console.print(rich_table(ranking_frame(comparison), title=title))
    for line in verdict_lines(comparison):
        console.print(escape(line), soft_wrap=True)
    console.print(escape(f"intervals, paired differences and p-values: {command_prefix()} compare {shlex.quote(space.experiment)}"),
                  soft_wrap=True)
    console.print(escape(f"MLflow experiment {space.experiment!r} (id {result.experiment_id}), parent run {result.parent_id}"), soft_wrap=True)
    kept = result.trials.get(f"tags.{MODEL_TAG}", pd.Series(dtype=object)).notna()
    if kept.any():
        names = ", ".join(result.trials.loc[kept, "run_name"].astype(str))
        console.print(escape(f"trained model kept for {names}: {command_prefix()} export {shlex.quote(space.experiment)} --out model.keras"),
                      soft_wrap=True)
    console.print(escape(f"open in the MLflow UI: {_ui_hint(result.tracking_uri, result.experiment_id)}"), soft_wrap=True)


def _search_with_progress(console, space, space_path: Path, search, distributed: bool = False):
    """One search, `search(observer)`, with the live display; input and interruption problems end the command here."""
    from search.errors import Interrupted, UserError
    from search.reporting.progress import RichProgress

    training = space.training
    console.print(f"[bold]{space.name}[/]: {escape(space.describe())}, {space.search.strategy} search, "
                  f"{training.epochs} epochs each, seed {space.search.seed}")
    try:
        with RichProgress(console, space.search.objective, training.epochs, space.search.repeats, distributed=distributed) as progress:
            return search(progress)
    except UserError as error:
        raise error.at(space_path) from None
    except KeyboardInterrupt:
        raise Interrupted("interrupted; the running trial and the search were marked KILLED in MLflow. "
                          "Run the same command again to continue the search.") from None


def _searching(space, space_path: Path, **options):
    """`search(observer)` for a space already loaded (a transfer's, a study's, a chief's)."""
    from search.orchestration.run import run_search

    return lambda observer: run_search(space, space_path, observer=observer, **options)


@app.command("study")
def study_command(
    folder: Annotated[Path, typer.Argument(help="A study folder under experiments/, holding study.yaml.", show_default=False)],
    full: Annotated[bool, typer.Option("--full", help="Run the full-scale variant (GPU and the real data set).")] = False,
    tracking_uri: TrackingOpt = None,
    tuner_dir: TunerDirOpt = Path("mlruns") / "tuner",
    fresh: Annotated[bool, typer.Option("--fresh", help="Start every search of the study over (after a change to its spaces); "
                                        "the earlier runs stay in MLflow and count in the methods record.")] = False,
):
    """Run a study: every search and space over every seed, then its report and methods record into
    FOLDER/results (with `fronts`, the searches' validation fronts compared on the test set). Run again, it
    continues where it stopped."""
    from search.spec.study import load_study

    study, plan = load_study(folder, full)
    quiet_tensorflow(trains=True)
    from rich.console import Console

    from search.orchestration.study import run_study

    console = Console()

    def run_one(space, space_path: Path, origin):
        return _search_with_progress(console, space, space_path, search=_searching(
            space, space_path, tracking_uri=tracking_uri, tuner_dir=tuner_dir, fresh=fresh, origin=origin,
            model_groups=study.rows or space.varying_names()))  # a kept model for the best trial of each group

    out = run_study(folder, study, plan, full, tracking_uri, run_one, say=lambda text: console.print(escape(text)))
    page = next((out / name for name in ("index.html", "fronts.md", "searches.md") if (out / name).is_file()), out)
    console.print(escape(f"wrote the report and methods record to {out}/ (open {page})"))


def _ui_hint(uri: str, experiment_id: str) -> str:
    """The experiment's runs table in the UI's model-training view, with the columns the search chose; for a
    local store, the command that serves it (and prints that address)."""
    from search.tracking.locations import resolve_tracking_uri, ui_address

    if uri.startswith(("http://", "https://")):
        return ui_address(uri, experiment_id, view=True)
    store = "" if uri == resolve_tracking_uri(None) else f" --tracking-uri {shlex.quote(uri)}"  # the default needs no option
    return f"{command_prefix()} ui{store}"
