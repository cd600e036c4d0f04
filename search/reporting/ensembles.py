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
