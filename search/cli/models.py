"""Commands that take trained models out of the store: export, ensemble."""

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


@app.command()
def ensemble(
    experiment: Annotated[str, typer.Argument(help="The MLflow experiment of a finished search.", show_default=False)],
    top: Annotated[int, typer.Option("--top", min=2, max=100, help="How many of the best kept models (by validation) to average.")] = 3,
    where: WhereOpt = None,
    tracking_uri: TrackingOpt = None,
):
    """Average the softmax outputs of the K best kept models (chosen on validation, never on test) and judge
    the ensemble and each member once on the test part of their split; logs an `ensemble` run beside the
    search, which `report` shows. Needs K kept models: training.save_models: all (best keeps one per group)."""
    from search.api import ensemble as build

    result = build(experiment, top=top, where=where, tracking_uri=tracking_uri)
    for rank, member in enumerate(result.members, start=1):
        typer.echo(f"member {rank}: {member.run_name} (run {member.run_id}): val_accuracy {member.val_accuracy:.4f}, "
                   f"test_accuracy {member.test_accuracy:.4f}")
    single = result.members[0].test_accuracy  # the model validation picks, not the best on test
    typer.echo(f"ensemble of {len(result.members)}: val_accuracy {result.val_accuracy:.4f}, test_accuracy {result.test_accuracy:.4f} "
               f"({result.test_accuracy - single:+.4f} against member 1, the single model validation picks); logged as run {result.run_id}")
