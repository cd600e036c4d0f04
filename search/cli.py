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


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _load(path: Path):
    from search.spacefile import SpaceError, load_space

    try:
        return load_space(path)
    except SpaceError as error:
        _fail(str(error))


def _quiet_tensorflow() -> None:
    import os

    from search.quiet import import_tensorflow_quietly

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # keep MLflow's table-creation notes off the display
    import_tensorflow_quietly()


@app.command()
def validate(spaces: Annotated[list[Path], typer.Argument(help="One or more space files.", show_default=False)]):
    """Check space files against the schema (no TensorFlow import); exit 2 on the first bad one."""
    for path in spaces:
        space = _load(path)
        varying = space.varying_axes()
        axes = " x ".join(f"{k}({len(v)})" for k, v in varying.items()) or "no varying axis"
        typer.echo(f"ok {path}: {space.model.family}, {space.grid_size()} candidates [{axes}], {space.search.strategy} search")


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

    from search.planning import plan_candidates
    from search.data import DataError

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
    tuner_dir: Annotated[
        Path, typer.Option(help="Where KerasTuner keeps its trial state.")
    ] = Path("mlruns") / "tuner",
):
    """Run the search: every trial is a nested MLflow run under one parent run for the search."""
    space = _load(space_path)
    _quiet_tensorflow()
    from rich.console import Console

    from search.data import DataError
    from search.progress import RichProgress
    from search.report import ranking
    from search.runner import run_search

    console = Console()
    training = space.training
    console.print(f"[bold]{space.name}[/]: {space.grid_size()} candidates, {space.search.strategy} search, "
                  f"{training.epochs} epochs each, seed {space.search.seed}")
    try:
        with RichProgress(console, space.search.objective, training.epochs, space.search.executions_per_trial) as progress:
            result = run_search(space, space_path, tracking_uri=tracking_uri, tuner_dir=tuner_dir, observer=progress)
    except DataError as error:
        _fail(f"{space_path}: {error}")
    except KeyboardInterrupt:
        _fail("interrupted; the running trial and the search were marked KILLED in MLflow", code=130)
    except RuntimeError as error:
        _fail(f"search stopped: {str(error).splitlines()[0]}", code=1)
    table = ranking(result.trials, space.search.objective, list(space.varying_axes()))
    console.print(_rich_table(table, title=f"trials ranked by {space.search.objective}"))
    console.print(f"MLflow experiment {space.experiment!r} (id {result.experiment_id}), parent run {result.parent_id}")
    console.print(f"open in the MLflow UI: {_ui_hint(result.tracking_uri, result.experiment_id, result.parent_id)}")


def _ui_hint(uri: str, experiment_id: str, run_id: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"mlflow ui --backend-store-uri '{uri}'   (then http://127.0.0.1:5000)"


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


def main():  # pragma: no cover - console-script entry
    app()
