"""Ensembles beside their members, for the report: each `ensemble` run's members (ranked by validation, as
chosen) and the ensemble, with validation and test accuracy, so the page shows what averaging gave."""

from __future__ import annotations

import html

import pandas as pd

from search.tracking.tags import MEMBERS_TAG

COLUMNS = ["ensemble", "model", "run", "val_accuracy", "test_accuracy"]


def ensembles_table(runs: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """One row per member and one for the ensemble, per ensemble run (MLflow columns: tags.*, metrics.*);
    `names` gives the members' run names by run id."""
    rows = []
    for _, run in runs[runs["status"] == "FINISHED"].iterrows() if len(runs) else []:
        members = str(run.get(f"tags.{MEMBERS_TAG}", "")).split(",")
        for rank, member in enumerate(members, start=1):
            rows.append({"ensemble": run["run_name"], "model": f"member {rank}", "run": names.get(member, member),
                         "val_accuracy": run.get(f"metrics.member_{rank}/val_accuracy"),
                         "test_accuracy": run.get(f"metrics.member_{rank}/test_accuracy")})
        rows.append({"ensemble": run["run_name"], "model": f"ensemble of {len(members)}", "run": run["run_id"],
                     "val_accuracy": run.get("metrics.val_accuracy"), "test_accuracy": run.get("metrics.test_accuracy")})
    return pd.DataFrame(rows, columns=COLUMNS)


CAPTION = ("Members are the best kept models by validation; the ensemble averages their softmax outputs. "
           "Test accuracy is measured once, on the test part of the members' split.")


def ensembles_markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def ensembles_html(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in COLUMNS) + "</tr>" for _, row in table.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.4f}"
    return str(value).replace("|", "\\|")


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
              "ensemble": rows["ensemble"].tolist(), "test": gain.test, "n": gain.n, "diff": gain.diff, "low": gain.low,
              "high": gain.high, "p": gain.p, "needed": gain.needed, "verdict": verdict}
    return "\n".join(lines), record
