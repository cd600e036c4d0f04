"""Comparison tables from known trial values: the aggregates and every output format."""

import json
import math
import re
import statistics

import pandas as pd
import pytest

from search.errors import TableError
from search.reporting.figures import pareto_front
from search.reporting.filters import filter_trials
from search.reporting.tables import compare, render


def trials(rows):
    frame = pd.DataFrame(rows)
    frame["run_id"] = [f"r{i}" for i in range(len(frame))]
    frame["experiment"] = frame.get("experiment", "e")
    frame["varying"] = "depth,residual"
    frame["objective"] = "val_accuracy"
    return frame


KNOWN = trials(
    [
        {"depth": 20, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.90, "params": 100.0, "flops": 10.0, "train_seconds": 1.0},
        {"depth": 20, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.94, "params": 100.0, "flops": 10.0, "train_seconds": 3.0},
        {"depth": 20, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.92, "params": 100.0, "flops": 10.0, "train_seconds": 2.0},
        {"depth": 56, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.97, "params": 300.0, "flops": 30.0, "train_seconds": 6.0},
        {"depth": 56, "residual": "True", "status": "FAILED", "best_val_accuracy": math.nan, "params": math.nan, "flops": math.nan, "train_seconds": math.nan},
        {"depth": 56, "residual": "False", "status": "FINISHED", "best_val_accuracy": 0.60, "params": 290.0, "flops": 29.0, "train_seconds": 5.0},
        {"depth": 20, "residual": "False", "status": "FAILED", "best_val_accuracy": math.nan, "params": math.nan, "flops": math.nan, "train_seconds": math.nan},
    ]
)


def test_groups_by_varying_axes_with_mean_std_n_and_failures():
    result = compare(KNOWN)
    assert result.keys == ["depth", "residual"] and result.metric == "best_val_accuracy"
    table = result.table.set_index(["depth", "residual"])
    row = table.loc[(20, "True")]
    assert row["mean"] == pytest.approx(0.92) and row["std"] == pytest.approx(statistics.stdev([0.90, 0.94, 0.92]))
    assert row["n"] == 3 and row["failed"] == 0 and row["train_seconds"] == pytest.approx(2.0)
    assert table.loc[(56, "True"), "n"] == 1 and table.loc[(56, "True"), "failed"] == 1
    assert math.isnan(table.loc[(56, "True"), "std"])
    failed_only = table.loc[(20, "False")]
    assert failed_only["n"] == 0 and failed_only["failed"] == 1 and math.isnan(failed_only["mean"])
    assert result.table["depth"].tolist()[0] == 56 and result.baseline == "depth=56,residual=True"
    assert result.table["best"].sum() == 0, "a larger mean of one replicate resolves nothing: no group is best"
    assert result.table["mean"].isna().tolist()[-1], "groups without a finished trial rank last"


def test_a_trial_without_per_replicate_values_is_one_replicate():
    frame = trials(
        [
            {"depth": 20, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.5, "best_val_accuracy_std": 0.1, "repeats": 2},
            {"depth": 20, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.8, "best_val_accuracy_std": 0.0, "repeats": 1},
        ]
    )
    # trials logged before replicates were recorded: each trial's mean is one replicate, 0.5 and 0.8
    values = [0.5, 0.8]
    row = compare(frame).table.iloc[0]
    assert row["n"] == 2
    assert row["mean"] == pytest.approx(statistics.fmean(values))
    assert row["std"] == pytest.approx(statistics.stdev(values))


def test_loss_metrics_rank_ascending_and_top_k():
    frame = KNOWN.assign(loss=[0.3, 0.1, 0.2, 0.05, math.nan, 2.0, math.nan])
    result = compare(frame, metric="loss", top=2)
    assert not result.maximise and len(result.table) == 2
    assert result.table["mean"].tolist() == pytest.approx([0.05, 0.2])


def test_costs_rank_ascending_so_fewer_seconds_is_the_better_direction():
    result = compare(KNOWN, metric="train_seconds")
    assert not result.maximise
    assert result.table["mean"].tolist()[0] == pytest.approx(2.0), "the cheapest group ranks first"


def test_measured_latency_is_a_cost_column_where_trials_logged_it():
    assert "latency_ms" not in compare(KNOWN).table, "shown only where measured"
    timed = KNOWN.assign(latency_ms=[1.0, 3.0, 2.0, 9.0, math.nan, 8.0, math.nan])
    result = compare(timed, metric="latency_ms")
    assert not result.maximise and result.table.set_index(["depth", "residual"]).loc[(20, "True"), "latency_ms"] == pytest.approx(2.0)
    header = render(compare(timed), "markdown").splitlines()[0]
    assert "latency_ms" in header and header.index("train_seconds") < header.index("latency_ms")


def test_pareto_keeps_the_groups_no_other_beats_on_the_ranking_metric_and_every_cost():
    # means by (depth, residual): (20,T) 0.92 at 100 params, (56,T) 0.97 at 300, (56,F) 0.60 at 290
    front = compare(KNOWN, pareto=["params"])
    assert set(map(tuple, front.table[["depth", "residual"]].to_numpy())) == {(20, "True"), (56, "True")}
    timed = KNOWN.assign(latency_ms=[5.0, 5.0, 5.0, 9.0, math.nan, 1.0, math.nan])
    both = compare(timed, pareto=["params", "latency_ms"])
    assert set(map(tuple, both.table[["depth", "residual"]].to_numpy())) == {(20, "True"), (56, "True"), (56, "False")}, \
        "the fastest, though least accurate, is on the front of three objectives"
    kept = compare(KNOWN, pareto=["params"], baseline="depth=56,residual=False")
    assert "depth=56,residual=False" == kept.baseline and len(kept.table) == 3, "the baseline is always shown"
    with pytest.raises(TableError, match="--pareto latency_ms: not a cost these trials logged; known: params, flops, train_seconds"):
        compare(KNOWN, pareto=["latency_ms"])


def test_the_front_is_chosen_on_validation_when_the_table_reports_test():
    frame = trials(
        [
            {"depth": 20, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.90, "test_accuracy": 0.80, "params": 100.0, "flops": 1.0, "train_seconds": 1.0},
            {"depth": 56, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.95, "test_accuracy": 0.70, "params": 300.0, "flops": 1.0, "train_seconds": 1.0},
        ]
    )
    result = compare(frame, metric="test_accuracy", pareto=["params"])
    assert len(result.table) == 2, "on test, 56 layers would be beaten by 20; on validation it is not"


def test_rows_where_and_errors():
    assert compare(KNOWN, rows=["residual"]).table.set_index("residual").loc["True", "n"] == 4
    kept = filter_trials(KNOWN, "depth = 20 and residual == 'True'")
    assert len(kept) == 3
    with pytest.raises(TableError, match="columns"):
        filter_trials(KNOWN, "nosuch = 1")
    with pytest.raises(TableError, match="no column 'width'"):
        compare(KNOWN, rows=["width"])


def test_several_experiments_become_a_key():
    frame = pd.concat([KNOWN, KNOWN.assign(experiment="other")], ignore_index=True)
    assert compare(frame).keys == ["experiment", "depth", "residual"]


def test_markdown_marks_the_best_cell_and_pivots():
    result = compare(KNOWN)
    text = render(result, "markdown")
    lines = text.strip().splitlines()
    assert lines[0].startswith("| depth | residual | best_val_accuracy | n | failed | params")
    assert lines[2].startswith("| 56 | True | 0.9700 | 1 | 1 | 300 |"), "the larger mean alone is not bold"
    assert "**" not in text
    assert len(lines) == 2 + 4
    pivot = render(result, "markdown", cols=["residual"])
    assert pivot.splitlines()[0] == "| depth | residual=False | residual=True |"
    assert "0.9200 ± 0.0200 (n=3)" in pivot and "| 0.9700 (n=1, 1 failed) |" in pivot and "**" not in pivot
    assert "- (n=0, 1 failed)" in pivot


def is_valid_tabular(latex: str) -> bool:
    lines = latex.strip().splitlines()
    match = re.fullmatch(r"\\begin\{tabular\}\{([lcr]+)\}", lines[0])
    if not match or lines[-1] != r"\end{tabular}":
        return False
    columns = len(match.group(1))
    rows = [line for line in lines[1:-1] if line != r"\hline"]
    return all(line.endswith(r"\\") and len(re.findall(r"(?<!\\)&", line)) == columns - 1 for line in rows)


def test_latex_is_a_valid_tabular_with_escaped_names():
    latex = render(compare(KNOWN), "latex")
    assert is_valid_tabular(latex)
    assert r"best\_val\_accuracy" in latex and r"\textbf" not in latex and r"$\pm$" in latex and r"95\% CI" in latex
    assert is_valid_tabular(render(compare(KNOWN), "latex", cols=["residual"]))


def test_csv_json_and_html_carry_the_same_numbers():
    result = compare(KNOWN)
    csv = pd.read_csv(__import__("io").StringIO(render(result, "csv")))
    assert csv["mean"].tolist()[:3] == pytest.approx(result.table["mean"].tolist()[:3])
    data = json.loads(render(result, "json"))
    assert data["metric"] == "best_val_accuracy" and data["groups"][0]["best"] is False
    assert data["groups"][0]["mean"] == pytest.approx(0.97)
    html = render(result, "html")
    assert html.count("<tr>") == 5 and "<strong>" not in html and "<td>0.9700</td>" in html


def test_pareto_front_keeps_only_undominated_points():
    costs = [1.0, 2.0, 3.0, 4.0, 2.5]
    scores = [0.5, 0.7, 0.6, 0.9, 0.8]
    assert pareto_front(__import__("numpy").array(costs), __import__("numpy").array(scores), maximise=True).tolist() == [0, 1, 4, 3]


def test_only_the_latest_search_of_a_space_and_seed_counts():
    from search.reporting.tables import latest_searches

    frame = KNOWN.assign(space="s", seed=1, parent_id="old", start_time=range(len(KNOWN)))
    repeat = KNOWN.assign(space="s", seed=1, parent_id="new", start_time=range(100, 100 + len(KNOWN)))
    other_seed = KNOWN.assign(space="s", seed=2, parent_id="seed2", start_time=range(50, 50 + len(KNOWN)))
    kept = latest_searches(pd.concat([frame, repeat, other_seed], ignore_index=True))
    assert set(kept["parent_id"]) == {"new", "seed2"} and len(kept) == 2 * len(KNOWN)


def test_a_metric_logged_once_per_trial_counts_once_whatever_the_repeats():
    frame = trials(
        [{"depth": 20, "residual": "True", "status": "FINISHED", "best_val_accuracy": 0.9, "trial_seconds": 4.0, "repeats": 3, "replicate_seeds": "100,101,102"}]
    )
    row = compare(frame, metric="trial_seconds").table.iloc[0]
    assert row["n"] == 1 and math.isnan(row["std"])


def test_pivot_orders_numeric_keys_by_value():
    frame = trials(
        [
            {"depth": d, "residual": r, "status": "FINISHED", "best_val_accuracy": 0.5 + d / 100}
            for d in (8, 32, 16)
            for r in ("False", "True")
        ]
    )
    pivot = render(compare(frame), "markdown", cols=["residual"]).splitlines()
    assert [line.split("|")[1].strip() for line in pivot[2:]] == ["8", "16", "32"]
