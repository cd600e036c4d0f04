"""The `archsearch` application: the one place errors are caught, and the options commands share.

Errors are caught once, in `_Commands.invoke`: an `ArchsearchError` prints one line and exits with its
status (2 for bad input), with the password of any URI in it masked; anything else is a bug and keeps its
traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from search.errors import ArchsearchError


class _Commands(TyperGroup):
    def invoke(self, ctx):
        # A tracking server that stops answering is waited for by archsearch itself, saying so (searches), or
        # reported in one line (reads), instead of by minutes of MLflow's own silent retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
        try:
            return super().invoke(ctx)
        except ArchsearchError as error:
            from search.tracking.locations import masked  # a store's URI in the message keeps its password

            typer.secho(f"error: {masked(error.message())}", err=True, fg=typer.colors.RED)
            raise typer.Exit(error.exit_code) from None


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        typer.echo(f"archsearch {version('archsearch')}")
        raise typer.Exit()


app = typer.Typer(
    cls=_Commands,
    help="Architecture search over CNN design axes: space files -> KerasTuner trials -> MLflow runs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
):
    """Architecture search over CNN design axes: space files -> KerasTuner trials -> MLflow runs."""

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

TrackingTimeoutOpt = Annotated[
    float,
    typer.Option(
        help="Seconds to wait for a tracking server that stops answering (the display says so) before giving up "
        "with exit 2; the search's state is kept, so the same command continues it.",
        min=1,
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
    Optional[str],
    typer.Option(help="Metric to compare (default: test_accuracy where the trials have a test part, else best_<objective>).", show_default=False),
]
ChooseOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--choose",
        help="Axes to pick per group on validation, comma-separated (e.g. learning_rate): each group keeps the value "
        "with the best mean best_<objective>, and is then reported on the metric.",
        show_default=False,
    ),
]
ParetoOpt = Annotated[
    Optional[list[str]],
    typer.Option(
        "--pareto",
        help="Costs, comma-separated (params, flops, train_seconds, latency_ms, ...): keep only the groups on the "
        "Pareto front of the ranking metric (validation) against them, and the baseline.",
        show_default=False,
    ),
]
WhereOpt = Annotated[
    Optional[str], typer.Option(help="Keep trials matching a filter over axis/metric columns, e.g. \"bn = 'pre' and depth >= 32\".", show_default=False)
]


def load(path: Path, transfer_target: bool = False):
    from search.api import load_space

    return load_space(path, transfer_target=transfer_target)


def quiet_tensorflow(trains: bool = False) -> None:
    from search.api import prepare

    prepare(trains)


def command_prefix() -> str:
    """How to type `archsearch` in the hints printed after a command, the way this one was started: under
    `uv run` (as the README does it) `archsearch` may not be on PATH."""
    import os
    import shlex
    import shutil
    import sys

    if os.environ.get("UV_RUN_RECURSION_DEPTH"):
        parent = os.environ.get("UV_INTERNAL__PARENT_INTERPRETER")  # set when uv itself ran as `python3 -m uv`
        return f"{Path(parent).name} -m uv run archsearch" if parent else "uv run archsearch"
    started_as = Path(sys.argv[0])
    if started_as.name == "archsearch":
        on_path = shutil.which("archsearch")
        return "archsearch" if on_path and Path(on_path).resolve() == started_as.resolve() else shlex.quote(sys.argv[0])
    return f"{shlex.quote(sys.executable)} -m search.cli"


SUFFIX_FORMATS = {".md": "markdown", ".tex": "latex", ".csv": "csv", ".html": "html", ".json": "json"}


def names(values: list[str] | None) -> list[str]:
    """`--rows a,b --rows c` -> [a, b, c]."""
    return [name.strip() for value in values or [] for name in value.split(",") if name.strip()]
