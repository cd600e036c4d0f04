"""The two rules every ranking follows, from the search's objective to the report's bold row."""

from __future__ import annotations


def minimised(metric: str) -> bool:
    """Losses are minimised; everything else (accuracies) is maximised."""
    return metric.endswith("loss")


def best_metric(objective: str) -> str:
    """The metric a trial logs for its best epoch by `objective`, what searches rank by."""
    return f"best_{objective}"
