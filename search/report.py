"""Runs DataFrame -> comparison tables. Pure pandas: no MLflow, no TensorFlow."""

from __future__ import annotations

import pandas as pd

COST_COLUMNS = ("params", "flops", "train_seconds")


def ranking(trials: pd.DataFrame, objective: str, axes: list[str]) -> pd.DataFrame:
    """One row per trial, best first: its axis values, status, objective and costs.

    Failed trials stay in the table (ranked last) so that a reader sees what did not train.
    """
    if trials.empty:
        return pd.DataFrame(columns=["trial", *axes, "status", objective, *COST_COLUMNS])
    table = pd.DataFrame({"trial": trials["params.trial_id"] if "params.trial_id" in trials else trials["run_name"]})
    for axis in axes:
        table[axis] = trials.get(f"params.{axis}")
    table["status"] = trials["status"]
    best = f"metrics.best_{objective}"
    table[objective] = trials[best] if best in trials else float("nan")
    for column in COST_COLUMNS:
        key = f"metrics.{column}"
        table[column] = trials[key] if key in trials else float("nan")
    ascending = objective.endswith("loss")
    return table.sort_values(objective, ascending=ascending, na_position="last", kind="stable").reset_index(drop=True)
