"""The two rules every ranking follows, from the search's objective to the report's bold row."""

from __future__ import annotations


COSTS = ("params", "flops", "train_seconds")  # what a trial costs: fewer is better


def minimised(metric: str) -> bool:
    """Losses and costs are minimised; everything else (accuracies) is maximised."""
    return metric.endswith("loss") or metric in COSTS


def best_metric(objective: str) -> str:
    """The metric a trial logs for its best epoch by `objective`, what searches rank by."""
    return f"best_{objective}"
