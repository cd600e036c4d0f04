"""The methods record of a study (`record.json`, `methods.md`, `replicates.csv`): per search, what ran on
which data split and code, what it cost; every replicate's values; the statistics behind the verdicts;
and every run the study's experiments hold, pilots and superseded runs included. Read back from the
runs, so a resumed or already finished search is recorded as fully as a fresh one."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd

from search.files import write_atomic
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
        "git_commit": first.get("tags.git_commit"),
        "data_hash": first.get("params.data_hash"),
        "train_samples": first.get("params.train_samples"),
        "validation_samples": first.get("params.validation_samples"),
        "test_samples": first.get("params.test_samples"),
        **{f"{part}_hash": first.get(f"params.{part}_hash") for part in ("train", "validation", "test")},
        "repeats": first.get("params.repeats"),
        "replicate_seeds": first.get("params.replicate_seeds"),
        "trials_finished": int((trials["status"] == "FINISHED").sum()) if len(trials) else 0,
        "trials_failed": int((trials["status"] == "FAILED").sum()) if len(trials) else 0,
        "train_seconds": _total(trials, "metrics.train_seconds"),
        "trial_seconds": _total(trials, "metrics.trial_seconds"),
        "wall_seconds": float(seconds),
    }


def _plain(value):
    """The record as JSON can hold it: a missing value (NaN) as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _total(trials: pd.DataFrame, column: str) -> float:
    """A sum over the trials that logged `column` (a trial whose process died logs no time)."""
    return float(pd.to_numeric(trials[column], errors="coerce").sum()) if column in trials else 0.0


def write_record(folder: Path, study: Study, full: bool, searches: list[dict], *, versions: dict[str, str], hardware: str,
                 costs: list[dict] = (), replicates: list[dict] = (), statistics: dict | None = None,
                 protocol: dict | None = None) -> Path:
    """`record.json`, `methods.md` and `replicates.csv`: enough to write a methods section from, and to
    recompute every statistic. `costs`: every search run of the study's experiments (`run_costs`)."""
    cost_hours = sum(s["trial_seconds"] for s in searches) / 3600
    wall_seconds = sum(s["wall_seconds"] for s in searches)
    all_hours = sum(c["trial_seconds"] for c in costs) / 3600
    record = {
        "study": study.name,
        "command": f"archsearch study {folder.parent}" + (" --full" if full else ""),
        "experiment": study.experiment(full),
        "seeds": study.seeds,
        "searches": searches,
        "search_cost_hours": cost_hours,
        "wall_seconds": wall_seconds,
        "statistics": statistics or {},
        "protocol": protocol,
        "first_run_started": min((c["started"] for c in costs if c.get("started")), default=None),
        "runs": list(costs),
        "all_runs_cost_hours": all_hours,
        "replicates": list(replicates),
        "hardware": hardware,
        "versions": versions,
        "date": time.strftime("%Y-%m-%d"),
    }
    write_atomic(folder / "record.json", json.dumps(_plain(record), indent=2, default=str) + "\n")
    lines = [
        f"# Methods record: {study.name}" + (" (full scale)" if full else ""),
        "",
        f"- Command: `{record['command']}`; MLflow experiment `{record['experiment']}`",
        f"- Seeds: {', '.join(map(str, study.seeds))} (each search seed gives its replicates' seeds, seed x 100 + index: "
        "initial weights and data order; the split is fixed by dataset.seed)",
        f"- Hardware: {record['hardware']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()),
        f"- Wall time of the searches: {wall_seconds / 60:.1f} min; search cost (sum of trial wall times): "
        f"{cost_hours:.2f} h on this machine",
        f"- Every run in the study's experiments, pilots and superseded runs included: {len(costs)} searches, "
        f"{all_hours:.2f} h (listed below)",
        f"- Replicates: {len(replicates)}, each with its values in `replicates.csv`",
    ]
    if protocol is not None:
        committed = protocol.get("first_commit")
        when = f"first committed {committed['date']} in {committed['commit'][:12]}" if committed else "not committed"
        lines.append(f"- Protocol: [{protocol['file']}](../{protocol['file']}) (sha256 {protocol['sha256'][:16]}), {when}; "
                     f"the first search run of the study's experiments started {record['first_run_started'] or 'never'} (UTC)")
    lines += [f"- Statistics, {name}: {text}" for name, text in (statistics or {}).items()]
    lines += [
        "",
        "| space | seed | commit | split hashes (train / val / test) | train / val / test images | trials (failed) | training s | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in searches:
        hashes = " / ".join(str(s.get(f"{part}_hash")) for part in ("train", "validation", "test"))
        lines.append(
            f"| {Path(s['space_file']).name} | {s['seed']} | {str(s.get('git_commit'))[:12]} | {hashes} "
            f"| {s['train_samples']} / {s['validation_samples']} / {s.get('test_samples')} "
            f"| {s['trials_finished']} ({s['trials_failed']}) | {s['train_seconds']:.0f} | {s['wall_seconds']:.0f} |"
        )
    lines += ["", "Every search run of the study's experiments:", "", "| experiment | space | seed | status | started | trials | trial s |", "|---|---|---|---|---|---|---|"]
    for c in costs:
        lines.append(f"| {c['experiment']} | {c['space']} | {c['seed']} | {c['status']} | {c['started']} | {c['trials']} | {c['trial_seconds']:.0f} |")
    write_atomic(folder / "methods.md", "\n".join(lines) + "\n")
    write_atomic(folder / "replicates.csv", pd.DataFrame(list(replicates)).to_csv(index=False))
    return folder / "record.json"
