"""The two rules every ranking follows, from the search's objective to the report's bold row."""

from __future__ import annotations


COSTS = ("params", "flops", "train_seconds")  # what every trial costs: fewer is better
MEASURED_COSTS = ("latency_ms", "latency_batch_ms", "search_hours")  # what some trials cost, where it was measured
# Zero-cost proxies (search.models.proxies), by name: scores of an untrained candidate, higher is better
PROXIES = ("synflow", "jacob_cov", "grad_norm", "snip", "params", "flops")
PRESCREENING = ("random", "evolution")  # the strategies whose sampling a proxy can prescreen


def minimised(metric: str) -> bool:
    """Losses and costs are minimised; everything else (accuracies) is maximised."""
    return metric.endswith("loss") or metric in COSTS or metric in MEASURED_COSTS


def best_metric(objective: str) -> str:
    """The metric a trial logs for its best epoch by `objective`, what searches rank by."""
    return f"best_{objective}"
