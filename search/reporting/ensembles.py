"""Ensembles beside their members, for the report: each `ensemble` run's members (ranked by validation, as
chosen) and the ensemble, with validation and test accuracy, so the page shows what averaging gave."""

from __future__ import annotations

import math

import pandas as pd

from search.reporting.tables import frame_html, frame_markdown
from search.tracking.tags import MEMBERS_TAG

COLUMNS = ["ensemble", "model", "run", "val_accuracy", "test_accuracy"]


def ensembles_table(runs: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """One row per member and one for the ensemble, per finished ensemble run (MLflow columns: tags.*,
    metrics.*) whose members are all among the trials reported (`names`: their run names by run id), the
    latest of each set of members: an ensemble of a superseded search, or one made twice, is not shown."""
    rows = []
    finished = runs[runs["status"] == "FINISHED"] if len(runs) else runs
    latest = finished.drop_duplicates(f"tags.{MEMBERS_TAG}", keep="last") if len(finished) else finished
    for _, run in latest.iterrows():
        members = str(run.get(f"tags.{MEMBERS_TAG}", "")).split(",")
        if not all(member in names for member in members):
            continue
        for rank, member in enumerate(members, start=1):
            rows.append({"ensemble": run["run_name"], "model": f"member {rank}", "run": names[member],
                         "val_accuracy": run.get(f"metrics.member_{rank}/val_accuracy"),
                         "test_accuracy": run.get(f"metrics.member_{rank}/test_accuracy")})
        rows.append({"ensemble": run["run_name"], "model": f"ensemble of {len(members)}", "run": run["run_id"],
                     "val_accuracy": run.get("metrics.val_accuracy"), "test_accuracy": run.get("metrics.test_accuracy")})
    return pd.DataFrame(rows, columns=COLUMNS)


CAPTION = ("Members are the best kept models by validation (member 1: the one `export` gives); the ensemble averages "
           "their softmax outputs. Validation and test accuracy are measured again on the kept weights, test once.")


def ensembles_markdown(table: pd.DataFrame) -> str:
    return frame_markdown(_shown(table))


def ensembles_html(table: pd.DataFrame) -> str:
    return frame_html(_shown(table))


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(**{c: table[c].map(lambda v: "" if pd.isna(v) else f"{v:.4f}") for c in ("val_accuracy", "test_accuracy")})


def ensemble_gain(rows: pd.DataFrame, space: str, top: int) -> tuple[str, dict]:
    """A study's ensembles of one space, seed by seed, against the single model validation picks (member 1):
    the paired difference with its 95% interval and paired t-test (markdown, and the same as a dict)."""
    from search.reporting.statistics import ALPHA, LEVEL, difference, summarise

    gain = difference(rows["ensemble"], rows["seed"], rows["single"], rows["seed"])
    resolved = gain.test == "paired" and gain.p < ALPHA and not (gain.low <= 0 <= gain.high)
    verdict = (("better" if gain.diff > 0 else "worse") + f" than the single model (p {gain.p:.3g})" if resolved
               else f"not resolved at n = {gain.n}" + (f" (about {gain.needed} seeds would resolve a difference this size)" if gain.needed else ""))
    lines = [f"## {space}: ensembles of the {top} best kept models", "",
             f"Per seed, test accuracy of the single model validation picks (member 1, what `export` gives), of the best and the mean "
             f"member, and of the ensemble of {top} (softmax averaged).", "",
             "| seed | single | best member | mean member | ensemble |", "|---|---|---|---|---|"]
    lines += [f"| {int(r.seed)} | {r.single:.4f} | {r.best_member:.4f} | {r.mean_member:.4f} | {r.ensemble:.4f} |" for r in rows.itertuples()]
    single, ensemble = summarise(rows["single"]), summarise(rows["ensemble"])
    test = "paired t-test by seed" if gain.test == "paired" else "Welch"
    lines += ["", f"Ensemble − single ({test}, n = {gain.n}): {gain.diff:+.4f} "
                  f"[{gain.low:+.4f}, {gain.high:+.4f}] ({LEVEL:.0%} interval), p {gain.p:.3g}: {verdict}. "
                  f"Means: single {single.mean:.4f}, ensemble {ensemble.mean:.4f}.", ""]
    record = {"space": space, "top": top, "seeds": rows["seed"].tolist(), "single": rows["single"].tolist(),
              "ensemble": rows["ensemble"].tolist(), "test": gain.test, "n": gain.n, "diff": gain.diff, "low": _finite(gain.low),
              "high": _finite(gain.high), "p": _finite(gain.p), "needed": gain.needed, "verdict": verdict}
    return "\n".join(lines), record


def _finite(value: float) -> float | None:
    """JSON has no NaN: an interval or p that one seed cannot give is null."""
    return None if math.isnan(value) else value
