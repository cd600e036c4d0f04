"""Commands that take trained models out of the store: export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from search.cli.app import TrackingOpt, WhereOpt, app


@app.command()
def export(
    experiment: Annotated[str, typer.Argument(help="The MLflow experiment of a finished search.", show_default=False)],
    out: Annotated[Path, typer.Option(help="The .keras file to write (its folder must exist).")] = Path("model.keras"),
    run: Annotated[
        Optional[str], typer.Option("--run", help="A trial's run id (default: the best trial by validation that keeps a model).", show_default=False)
    ] = None,
    where: WhereOpt = None,
    register: Annotated[
        Optional[str], typer.Option(help="Also add the model to MLflow's model registry under this name (a new version).", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the --out file if it already exists.")] = False,
    tracking_uri: TrackingOpt = None,
):
    """Write a trained trial's model as a .keras file: the selected epoch's weights of its best replicate,
    compiled for evaluate. Trials keep models under training.save_models (default: the best of each search)."""
    from search.api import export_model

    kept, version = export_model(experiment, out, run_id=run, where=where, register=register, force=force, tracking_uri=tracking_uri)
    shown = ", ".join(f"{key} {kept.metrics[key]:.4f}" for key in ("best_val_accuracy", "test_accuracy") if key in kept.metrics)
    typer.echo(f"wrote {out}: {kept.run_name} (run {kept.run_id}{', ' + shown if shown else ''})")
    if version is not None:
        typer.echo(f"registered as {register} version {version} (models:/{register}/{version})")
