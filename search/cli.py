"""The `archsearch` command line: parse, call the library, print. Heavy imports live inside commands,
so `--help`, `validate` and `schema` answer without loading TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="Architecture search over CNN design axes: space files -> KerasTuner trials -> MLflow runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SpaceArg = Annotated[Path, typer.Argument(help="A space file (YAML), e.g. spaces/vgg_depth.yaml.", show_default=False)]
HeartbeatOpt = Annotated[
    float, typer.Option(help="Seconds without a word from a worker before its trial is handed to another (at least 15).", min=15)
]
TunerDirOpt = Annotated[Path, typer.Option(help="Where KerasTuner keeps its trial state.")]
FreshOpt = Annotated[
    bool, typer.Option("--fresh", help="Start over instead of continuing an interrupted search (or repeating a finished one).")
]
TrackingOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking URI (a server such as http://127.0.0.1:5000, or sqlite:///path.db). "
        "Default: the sqlite store under ./mlruns.",
        show_default=False,
    ),
]


ExperimentsArg = Annotated[list[str], typer.Argument(help="MLflow experiment name(s); several go into one table.", show_default=False)]
RowsOpt = Annotated[
    Optional[list[str]],
    typer.Option("--rows", help="Axes to group by, comma-separated (default: every axis that varied).", show_default=False),
]
ColsOpt = Annotated[
    Optional[list[str]],
    typer.Option("--cols", help="Axes to spread across columns (Markdown, LaTeX, HTML), e.g. --rows depth --cols residual.", show_default=False),
]
MetricOpt = Annotated[
    Optional[str], typer.Option(help="Metric to compare (default: best_<objective> of the searches).", show_default=False)
]
WhereOpt = Annotated[
    Optional[str], typer.Option(help="Keep trials matching a filter over axis/metric columns, e.g. \"bn = 'pre' and depth >= 32\".", show_default=False)
]
SUFFIX_FORMATS = {".md": "markdown", ".tex": "latex", ".csv": "csv", ".html": "html", ".json": "json"}


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _load(path: Path, transfer_target: bool = False):
    from search.spacefile import SpaceError, load_space

    try:
        return load_space(path, transfer_target=transfer_target)
    except SpaceError as error:
        _fail(str(error))


def _quiet_tensorflow(trains: bool = False) -> None:
    """Import TensorFlow; a command that `trains` trials here first starts the server their processes fork from,
    whose own TensorFlow import then runs beside this one."""
    import os

    from search.quiet import import_tensorflow_quietly
    from search.trial_server import start_trial_server

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # keep MLflow's table-creation notes off the display
    if trains:
        start_trial_server()
    import_tensorflow_quietly()


@app.command()
def validate(spaces: Annotated[list[Path], typer.Argument(help="One or more space files.", show_default=False)]):
    """Check space files against the schema (no TensorFlow import); exit 2 on the first bad one."""
    for path in spaces:
        space = _load(path)
        typer.echo(f"ok {path}: {space.describe()}, {space.search.strategy} search")


@app.command()
def schema():
    """Print the JSON Schema of space files (point your editor's YAML plugin at it)."""
    from search.space import Space

    typer.echo(json.dumps(Space.model_json_schema(), indent=2))


@app.command()
def plan(
    space_path: SpaceArg,
    sample: Annotated[int, typer.Option(help="Candidates to show when the grid is larger than this.", min=1)] = 24,
):
    """List the candidates the search would try, with parameters and FLOPs, before anything trains."""
    space = _load(space_path)
    _quiet_tensorflow()
    from rich.console import Console

    from search.data import DataError
    from search.planning import plan_candidates

    console = Console()
    try:
        table, note = plan_candidates(space, sample)
    except DataError as error:
        _fail(f"{space_path}: {error}")
    console.print(_rich_table(table, title=f"{space.name}: {note}"))


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
):
    """Run the search: every trial is a nested MLflow run under one parent run for the search.

    Running it again after an interruption (Ctrl-C, kill, restart) continues the search; a finished
    search is reported, not repeated, unless --fresh."""
    space = _load(space_path)
    _quiet_tensorflow(trains=workers == 0)
    from rich.console import Console

    from search.distributed import Distribution

    console = Console()
    distribution = Distribution(local_workers=workers, heartbeat_timeout=heartbeat_timeout) if workers else None
    result = _search_with_progress(console, space, space_path, tracking_uri, tuner_dir, fresh, distribution=distribution)
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
):
    """Serve a search to workers (KerasTuner's distributed chief): creates the parent run, hands out trials,
    ends when every trial is in. Start workers with `archsearch worker SPACE --chief HOST:PORT`."""
    space = _load(space_path)
    _quiet_tensorflow()
    from rich.console import Console

    from search.distributed import Distribution

    console = Console()
    _check_can_listen(host, port)
    distribution = Distribution(f"{host}:{port}", workers, heartbeat_timeout)
    console.print(f"chief of {space.name} listening on {host}:{port}; workers: archsearch worker {space_path} --chief HOST:{port}")
    result = _search_with_progress(console, space, space_path, tracking_uri, tuner_dir, fresh, distribution=distribution)
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
):
    """Train trials handed out by a chief, logging each to the chief's search in the same tracking store.
    Exits when the chief has no trial left."""
    import os
    import socket

    space = _load(space_path)
    if ":" not in chief_address or not chief_address.rpartition(":")[2].isdigit():
        _fail(f"--chief: expected HOST:PORT, got {chief_address!r}")
    worker_id = worker_id or f"worker-{socket.gethostname()}-{os.getpid()}"
    if "chief" in worker_id:  # KerasTuner takes any tuner id containing "chief" for the chief itself
        _fail(f"--id: a worker's name must not contain 'chief' (got {worker_id!r}); give one with --id")
    _quiet_tensorflow(trains=True)
    import grpc

    from search.data import DataError
    from search.distributed import WorkerError, run_worker
    from search.progress import LineProgress
    from search.store import TrackingError

    typer.echo(f"{worker_id}: joining the search of {space.name} served by {chief_address}")
    try:
        parent_id = run_worker(space, space_path, chief_address, worker_id=worker_id, tracking_uri=tracking_uri, tuner_dir=tuner_dir,
                               threads=threads, observer=LineProgress(worker_id))
    except (DataError, WorkerError, TrackingError) as error:
        _fail(f"{space_path}: {error}")
    except grpc.RpcError as error:
        _fail(f"lost the chief at {chief_address}: {error.code().name} ({error.details()})", code=1)
    typer.echo(f"{worker_id}: no trial left in search {parent_id}; done")


@app.command()
def server(
    backend_store_uri: Annotated[
        str, typer.Option(help="sqlite:///path/mlflow.db, or postgresql://user:password@host/db for a team.")
    ] = "sqlite:///mlruns/mlflow.db",
    artifacts: Annotated[Path, typer.Option(help="Where the server keeps artifacts (clients upload through it).")] = Path("mlruns") / "artifacts",
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine, 0.0.0.0 opens it to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 5000,
):
    """Start an MLflow tracking server for chief and workers on several machines to log to
    (`--tracking-uri http://HOST:PORT` on each); it also serves the UI."""
    import os
    import sys

    from search.store import sqlite_path

    db = sqlite_path(backend_store_uri)
    if db is not None:
        from search.tracking import create_sqlite_store

        create_sqlite_store(db)  # built atomically: a server killed while creating it leaves no broken store
    elif not backend_store_uri.startswith(("postgresql://", "postgresql+", "mysql://", "mysql+")):
        _fail(f"--backend-store-uri: expected sqlite:///PATH or a postgresql:// / mysql:// URI, got {backend_store_uri!r}")
    artifacts.mkdir(parents=True, exist_ok=True)
    typer.echo(f"MLflow tracking server on http://{host}:{port} (store {backend_store_uri}, artifacts {artifacts}); "
               f"clients: --tracking-uri http://{host}:{port}")
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
                              "--artifacts-destination", str(artifacts.resolve()), "--host", host, "--port", str(port)])


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
    target = _load(target_path, transfer_target=True)
    from search.store import TrackingError, resolve_tracking_uri
    from search.transfer import TransferError, best_cells, transferred_space

    try:
        origin = best_cells(resolve_tracking_uri(tracking_uri), source, top=top, parent_id=search_run)
        space = transferred_space(target, origin)
    except (TransferError, TrackingError) as error:
        _fail(f"{target_path}: {error}")
    _quiet_tensorflow(trains=True)
    from rich.console import Console

    console = Console()
    console.print(f"transferring {len(origin.runs)} cell(s) from search {origin.parent_id} ({origin.space}, {origin.strategy}, "
                  f"{origin.trials} trials, {origin.search_hours:.3f} device-hours)")
    result = _search_with_progress(console, space, target_path, tracking_uri, tuner_dir, fresh, origin)
    _print_result(console, space, result)


def _check_can_listen(host: str, port: int) -> None:
    """Refuse a taken or invalid address before the search's parent run is created."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        _fail(f"--host/--port: cannot listen on {host}:{port} ({error.strerror or error})")


def _print_result(console, space, result) -> None:
    """The ranked candidates and where to find them, after a search."""
    from search.tables import compare, ranking_frame, trials_frame

    if result.outcome == "already done":
        console.print(f"this search already ran to its end (parent run {result.parent_id}); --fresh runs it again")
    elif result.outcome == "resumed":
        console.print("continued the interrupted search; finished trials were not run again")
    if result.trials.empty:
        _fail(f"the search has no trial runs (parent run {result.parent_id}); --fresh starts it again", code=1)
    comparison = compare(trials_frame(result.trials), rows=space.varying_names())
    console.print(_rich_table(ranking_frame(comparison), title=f"candidates ranked by {comparison.metric} (* best)"))
    console.print(f"MLflow experiment {space.experiment!r} (id {result.experiment_id}), parent run {result.parent_id}")
    console.print(f"open in the MLflow UI: {_ui_hint(result.tracking_uri, result.experiment_id, result.parent_id)}")


def _search_with_progress(console, space, space_path: Path, tracking_uri, tuner_dir: Path, fresh: bool, origin=None, distribution=None):
    """One search with the live display; input and interruption problems end the command here."""
    from rich.markup import escape

    from search.data import DataError
    from search.progress import RichProgress
    from search.resume import SearchBusy, SearchChanged
    from search.runner import run_search
    from search.store import TrackingError

    training = space.training
    console.print(f"[bold]{space.name}[/]: {escape(space.describe())}, {space.search.strategy} search, "
                  f"{training.epochs} epochs each, seed {space.search.seed}")
    try:
        executions = space.search.executions_per_trial
        with RichProgress(console, space.search.objective, training.epochs, executions, distributed=distribution is not None) as progress:
            return run_search(
                space, space_path, tracking_uri=tracking_uri, tuner_dir=tuner_dir, fresh=fresh, observer=progress, origin=origin,
                distribution=distribution,
            )
    except (DataError, SearchChanged, SearchBusy, TrackingError, OSError) as error:
        _fail(f"{space_path}: {error}")
    except KeyboardInterrupt:
        _fail("interrupted; the running trial and the search were marked KILLED in MLflow. "
              "Run the same command again to continue the search.", code=130)
    except RuntimeError as error:
        _fail(f"search stopped: {str(error).splitlines()[0]}", code=1)


@app.command("study")
def study_command(
    folder: Annotated[Path, typer.Argument(help="A study folder under experiments/, holding study.yaml.", show_default=False)],
    full: Annotated[bool, typer.Option("--full", help="Run the full-scale variant (GPU and the real data set).")] = False,
    tracking_uri: TrackingOpt = None,
    tuner_dir: TunerDirOpt = Path("mlruns") / "tuner",
):
    """Run a study: every space over every seed, then its report and methods record into FOLDER/results."""
    from search.spacefile import SpaceError
    from search.study import load_study

    try:
        study, plan = load_study(folder, full)
    except SpaceError as error:
        _fail(str(error))
    _quiet_tensorflow(trains=True)
    from rich.console import Console

    from search.report import write_report
    from search.store import TrackingError, resolve_tracking_uri
    from search.study import search_record, seeded, transfer_target, write_record, write_search_table
    from search.transfer import TransferError, best_cells, transferred_space

    console = Console()
    experiment, search_experiment = study.experiment(full), study.search_experiment(full)
    records = []
    searches_then_spaces = [(p, s, search_experiment) for p, s in plan.searches] + [(p, s, experiment) for p, s in plan.spaces]
    for space_path, space, into in searches_then_spaces:
        for seed in study.seeds:
            result = _search_with_progress(console, seeded(space, seed, into), space_path, tracking_uri, tuner_dir, False)
            records.append(search_record(space_path, seed, result.trials))
    for transfer, search, target_path, target in plan.transfers:
        for seed in study.seeds:
            source = seeded(search, seed, search_experiment)
            try:
                origin = best_cells(resolve_tracking_uri(tracking_uri), search_experiment, top=transfer.top, space=source.name)
                space = transferred_space(transfer_target(target, search, seed, experiment), origin)
            except (TransferError, TrackingError) as error:
                _fail(f"{target_path}: {error}")
            result = _search_with_progress(console, space, target_path, tracking_uri, tuner_dir, False, origin)
            records.append(search_record(target_path, seed, result.trials))
    out = folder / ("results-full" if full else "results")
    from search.tables import TableError

    try:
        write_report(tracking_uri, [experiment], out, rows=study.rows or None, cols=study.cols or None, metric=study.metric)
    except (TableError, TrackingError) as error:
        _fail(f"{folder / 'study.yaml'}: the searches ran, but the report failed: {error}")
    write_record(out, study, full, records)
    if plan.searches:
        try:
            write_search_table(resolve_tracking_uri(tracking_uri), search_experiment, out)
        except (TableError, TrackingError, KeyError) as error:
            _fail(f"{folder / 'study.yaml'}: the searches ran, but their table failed: {error}")
    console.print(f"wrote the report and methods record to {out}/ (open {out / 'index.html'})")


def _ui_hint(uri: str, experiment_id: str, run_id: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"archsearch ui --tracking-uri '{uri}'"


def _names(values: list[str] | None) -> list[str]:
    return [name.strip() for value in values or [] for name in value.split(",") if name.strip()]


@app.command("compare")
def compare_command(
    experiments: ExperimentsArg,
    rows: RowsOpt = None,
    cols: ColsOpt = None,
    metric: MetricOpt = None,
    where: WhereOpt = None,
    top: Annotated[Optional[int], typer.Option(help="Keep the K best groups.", min=1, show_default=False)] = None,
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", help="markdown, latex, csv, html or json (default: from --out's suffix, else markdown).", show_default=False),
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write to this file instead of stdout.", show_default=False)] = None,
    all_searches: Annotated[
        bool,
        typer.Option("--all-searches", help="Pool every search of a space and seed, not only the latest (a --fresh repeat or an edited space replaces the earlier search by default)."),
    ] = False,
    tracking_uri: TrackingOpt = None,
):
    """Compare trials grouped by axis values: mean ± std over repeats, n, failed trials, costs; best marked."""
    from search.report import load_comparison
    from search.store import TrackingError
    from search.tables import FORMATS, TableError, render

    fmt = fmt or SUFFIX_FORMATS.get(out.suffix if out else "", "markdown")
    if fmt not in FORMATS:
        _fail(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    try:
        comparison, _ = load_comparison(
            tracking_uri, experiments, rows=_names(rows) or None, cols=_names(cols), metric=metric, where=where, top=top,
            all_searches=all_searches,
        )
        text = render(comparison, fmt, _names(cols) or None)
    except (TableError, TrackingError) as error:
        _fail(str(error))
    if out:
        out.write_text(text)
        typer.echo(f"wrote {out}", err=True)
    else:
        typer.echo(text, nl=False)


@app.command()
def report(
    experiments: ExperimentsArg,
    out: Annotated[Path, typer.Option(help="Folder to write the report into.")] = Path("report"),
    rows: RowsOpt = None,
    cols: ColsOpt = None,
    metric: MetricOpt = None,
    where: WhereOpt = None,
    log: Annotated[bool, typer.Option(help="Also log the report to the latest search's parent run in MLflow.")] = True,
    tracking_uri: TrackingOpt = None,
):
    """Write tables (every format), figures (PNG + SVG) and index.md / index.html for a report."""
    from search.report import write_report
    from search.store import TrackingError
    from search.tables import TableError

    try:
        written = write_report(
            tracking_uri, experiments, out, rows=_names(rows) or None, cols=_names(cols) or None, metric=metric, where=where, log_to_mlflow=log
        )
    except (TableError, TrackingError) as error:
        _fail(str(error))
    typer.echo(f"wrote {len(written)} files to {out}/ (open {out / 'index.html'})")


@app.command()
def ui(
    tracking_uri: TrackingOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps the UI on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 5000,
):
    """Start the MLflow UI on the project's store (./mlruns by default) and print its URL; Ctrl-C stops it."""
    import os
    import sys

    from search.store import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        _fail(f"{uri} is already a tracking server: open it in a browser")
    typer.echo(f"MLflow UI for {uri} at http://{host}:{port}  (Ctrl-C to stop)")
    sys.stdout.flush()
    # Become the MLflow UI process, so that Ctrl-C and kill reach it (and its workers) directly.
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)])


def _rich_table(frame, title: str):
    from rich.table import Table

    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if frame[column].dtype.kind in "if" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


if __name__ == "__main__":
    app()
