"""The methods record of a study (`record.json`, `methods.md`): per search, what ran on which data, and
what it cost, read back from its runs, so a resumed or already finished search is recorded as fully as a
fresh one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from search.spec.study import Study


def search_record(space_path: Path, seed: int, trials: pd.DataFrame) -> dict:
    """One search's line in the methods record (read back from its runs, so a resumed or already
    finished search is recorded as fully as a fresh one)."""
    first = trials.iloc[0] if len(trials) else pd.Series(dtype=object)
    seconds = (trials["end_time"].max() - trials["start_time"].min()) / 1000 if len(trials) else 0.0
    return {
        "space_file": str(space_path),
        "space_hash": first.get("tags.space_hash"),
        "seed": seed,
        "data_hash": first.get("params.data_hash"),
        "train_samples": first.get("params.train_samples"),
        "validation_samples": first.get("params.validation_samples"),
        "trials_finished": int((trials["status"] == "FINISHED").sum()) if len(trials) else 0,
        "trials_failed": int((trials["status"] == "FAILED").sum()) if len(trials) else 0,
        "train_seconds": _total(trials, "metrics.train_seconds"),
        "trial_seconds": _total(trials, "metrics.trial_seconds"),
        "wall_seconds": float(seconds),
    }


def _total(trials: pd.DataFrame, column: str) -> float:
    """A sum over the trials that logged `column` (a trial whose process died logs no time)."""
    return float(pd.to_numeric(trials[column], errors="coerce").sum()) if column in trials else 0.0


def write_record(folder: Path, study: Study, full: bool, searches: list[dict], *, versions: dict[str, str], hardware: str) -> Path:
    """`record.json` and `methods.md`: enough to write a methods section from."""
    cost_hours = sum(s["trial_seconds"] for s in searches) / 3600
    wall_seconds = sum(s["wall_seconds"] for s in searches)
    record = {
        "study": study.name,
        "command": f"archsearch study {folder.parent}" + (" --full" if full else ""),
        "experiment": study.experiment(full),
        "seeds": study.seeds,
        "searches": searches,
        "search_cost_hours": cost_hours,
        "wall_seconds": wall_seconds,
        "hardware": hardware,
        "versions": versions,
        "date": time.strftime("%Y-%m-%d"),
    }
    (folder / "record.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    lines = [
        f"# Methods record: {study.name}" + (" (full scale)" if full else ""),
        "",
        f"- Command: `{record['command']}`; MLflow experiment `{record['experiment']}`",
        f"- Seeds: {', '.join(map(str, study.seeds))} (each seed fixes the data split, shuffling, initial weights)",
        f"- Hardware: {record['hardware']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()),
        f"- Wall time of the searches: {wall_seconds / 60:.1f} min; search cost (sum of trial wall times): "
        f"{cost_hours:.2f} h on this machine",
        "",
        "| space | seed | data hash | train / val images | trials (failed) | training s | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in searches:
        lines.append(
            f"| {Path(s['space_file']).name} | {s['seed']} | {s['data_hash']} | {s['train_samples']} / {s['validation_samples']} "
            f"| {s['trials_finished']} ({s['trials_failed']}) | {s['train_seconds']:.0f} | {s['wall_seconds']:.0f} |"
        )
    (folder / "methods.md").write_text("\n".join(lines) + "\n")
    return folder / "record.json"
