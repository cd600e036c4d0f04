"""`compare` and `report` against a real MLflow store filled by real tiny searches (`ui`: tests/test_ui.py)."""

import base64
import itertools
import json
import re
import statistics
import xml.etree.ElementTree as ElementTree

import pandas as pd
import pytest
from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from PIL import Image
from typer.testing import CliRunner

from search.cli import app
from search.orchestration.report import load_comparison, write_report
from search.reporting import figures
from search.tracking.client import experiment_runs, metric_histories
from search.tracking.reader import read_trials
from search.tracking.tags import PARENT_TAG

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Experiment `tiny`: the 2-candidate search with seeds 7 and 8; experiment `tiny_b`: seed 7 again."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    for seed, experiment in ((7, "tiny"), (8, "tiny"), (7, "tiny_b")):
        text = TINY_SPACE.replace("seed: 7", f"seed: {seed}").replace("experiment: tiny", f"experiment: {experiment}")
        space = write(root / f"{experiment}_{seed}.yaml", text)
        result = runner.invoke(app, ["run", str(space), "--tracking-uri", uri, "--tuner-dir", str(root / "tuner")])
        assert result.exit_code == 0, result.output
        assert "candidates ranked by best_val_accuracy, reported on test_accuracy" in result.output
    return root, uri


def logged(uri, experiment):
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return [r for r in client.search_runs([experiment_id]) if PARENT_TAG in r.data.tags]


def compare_json(uri, *args):
    result = runner.invoke(app, ["compare", *args, "--tracking-uri", uri, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_compare_aggregates_exactly_what_was_logged_over_seeds(store):
    _, uri = store
    data = compare_json(uri, "tiny")
    assert data["metric"] == "test_accuracy"  # the test part leads; validation chose the epochs
    runs = logged(uri, "tiny")
    assert len(runs) == 4
    for group in data["groups"]:
        values = [r.data.metrics["test_accuracy/replicate_0"] for r in runs if r.data.params["residual"] == group["residual"]]
        assert group["n"] == 2 == len(values) and group["failed"] == 0
        assert group["mean"] == pytest.approx(statistics.fmean(values), abs=1e-9)
        assert group["std"] == pytest.approx(statistics.stdev(values), abs=1e-9)
        params = {r.data.metrics["params"] for r in runs if r.data.params["residual"] == group["residual"]}
        assert group["params"] == params.pop()
    best = max(data["groups"], key=lambda g: g["mean"])
    other = next(g for g in data["groups"] if g is not best)
    assert best["verdict"] == "baseline" and data["baseline"] == f"residual={best['residual']}"
    assert other["test"] == "paired", "both candidates ran under seeds 7 and 8"
    by_seed = {(r.data.params["residual"], r.data.params["replicate_seeds"]): r.data.metrics["test_accuracy"] for r in runs}
    paired = [by_seed[(other["residual"], s)] - by_seed[(best["residual"], s)] for s in ("700", "800")]
    assert other["diff"] == pytest.approx(statistics.fmean(paired), abs=1e-9)
    # bold only on a resolved win, never on the larger mean alone
    assert best["best"] == other["verdict"].startswith("worse") and not other["best"]


def test_compare_filters_selects_metric_and_joins_experiments(store):
    _, uri = store
    data = compare_json(uri, "tiny", "--where", "residual = 'True'", "--metric", "loss")
    assert [g["residual"] for g in data["groups"]] == ["True"] and data["metric"] == "loss" and not data["maximise"]
    joined = compare_json(uri, "tiny", "tiny_b")
    assert {(g["experiment"], g["n"]) for g in joined["groups"]} == {("tiny", 2), ("tiny_b", 1)}
    top = compare_json(uri, "tiny", "tiny_b", "--top", "1")
    assert len(top["groups"]) == 1


def test_compare_writes_formats_by_suffix_and_pivots(store, tmp_path):
    _, uri = store
    out = tmp_path / "table.tex"
    result = runner.invoke(app, ["compare", "tiny", "tiny_b", "--cols", "residual", "--tracking-uri", uri, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith(r"\begin{tabular}") and "residual=False & residual=True" in text
    assert text.count(r"\\") == 3  # header + one row per experiment


def test_fast_sql_reader_matches_mlflow_client(store):
    _, uri = store
    fast = read_trials(uri, ["tiny", "tiny_b"])
    slow = pd.concat([experiment_runs(uri, name, "trial").assign(experiment=name) for name in ("tiny", "tiny_b")], ignore_index=True)
    assert len(fast) == 6
    pd.testing.assert_frame_equal(fast[sorted(fast.columns)], slow[sorted(slow.columns)], check_dtype=False)


def test_a_store_at_a_revision_the_fast_reader_was_not_checked_on_is_read_through_mlflow(store, monkeypatch, caplog):
    """After an MLflow upgrade the tables may have changed: the fast reader must not guess, and says why it is slow."""
    from search.tracking import reader

    _, uri = store
    fast = read_trials(uri, ["tiny"])
    monkeypatch.setattr(reader, "KNOWN_SCHEMA_REVISIONS", frozenset())
    with caplog.at_level("WARNING", logger="search.tracking.reader"):
        slow = read_trials(uri, ["tiny"])
    assert "MLflow schema revision dc11669786a5" in caplog.text and "through MLflow's client" in caplog.text
    pd.testing.assert_frame_equal(fast[sorted(fast.columns)], slow[sorted(slow.columns)], check_dtype=False)


def test_a_store_mlflow_cannot_open_is_refused_with_one_line(store, tmp_path):
    import shutil
    import sqlite3

    root, _ = store
    old = tmp_path / "mlflow.db"
    shutil.copy(root / "mlflow.db", old)
    with sqlite3.connect(old) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")  # an older MLflow's store, say
    result = runner.invoke(app, ["compare", "tiny", "--tracking-uri", f"sqlite:///{old}"])
    assert result.exit_code == 2 and "mlflow db upgrade" in result.output and "Traceback" not in result.output


def test_a_damaged_store_is_refused_with_its_name_not_swallowed(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"SQLite format 3\x00" + b"\x17" * 4000)  # a header, then garbage: not a database
    result = runner.invoke(app, ["compare", "tiny", "--tracking-uri", f"sqlite:///{db}"])
    assert result.exit_code == 2 and str(db) in result.output and "cannot read the MLflow store" in result.output
    assert "Traceback" not in result.output


def test_compare_on_a_missing_store_says_so_and_creates_nothing(tmp_path):
    db = tmp_path / "absent" / "mlflow.db"
    result = runner.invoke(app, ["compare", "tiny", "--tracking-uri", f"sqlite:///{db}"])
    assert result.exit_code == 2 and "no MLflow store" in result.output
    assert not db.parent.exists()


def test_compare_pareto_keeps_the_undominated_groups_of_the_store(store):
    _, uri = store
    every = compare_json(uri, "tiny", "--metric", "best_val_accuracy")["groups"]
    front = compare_json(uri, "tiny", "--metric", "best_val_accuracy", "--pareto", "params")["groups"]
    points = {g["residual"]: (g["mean"], g["params"]) for g in every}
    undominated = {name for name, (score, cost) in points.items()
                   if not any(s >= score and c <= cost and (s, c) != (score, cost) for s, c in points.values())}
    assert {g["residual"] for g in front} == undominated | {every[0]["residual"]}, "the front, and the baseline"


def test_compare_bad_requests_exit_2(store):
    _, uri = store
    for args, fragment in (
        (["nope"], "no experiment 'nope'"),
        (["tiny", "--rows", "width2"], "no column 'width2'"),
        (["tiny", "--where", "depth >"], "--where"),
        (["tiny", "--format", "docx"], "choose from"),
        (["tiny", "--pareto", "params,latency_ms"], "--pareto latency_ms: not a cost these trials logged"),
    ):
        result = runner.invoke(app, ["compare", *args, "--tracking-uri", uri])
        assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output


def test_report_writes_tables_figures_and_indexes_and_logs_them(store, tmp_path):
    _, uri = store
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "tiny", "--out", str(out), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    for name in ("learning_curves", "metric_by_axis", "metric_vs_cost"):
        with Image.open(out / f"{name}.png") as image:
            assert image.size[0] > 500 and image.size[1] > 300
        assert ElementTree.parse(out / f"{name}.svg").getroot().tag.endswith("svg")
    for name in ("comparison.md", "comparison.tex", "comparison.csv", "comparison.html", "comparison.json", "index.md", "index.html"):
        assert (out / name).stat().st_size > 0, name
    assert "![learning_curves](learning_curves.png)" in (out / "index.md").read_text()
    shown = re.findall(r'<img src="data:image/png;base64,([^"]+)"', (out / "index.html").read_text())
    beside = [(out / f"{name}.png").read_bytes() for name in ("learning_curves", "metric_by_axis", "metric_vs_cost")]
    assert [base64.b64decode(data) for data in shown] == beside, "the page embeds the figures written beside it"
    assert not re.search(r"""<img src=["'](?!data:)""", (out / "index.html").read_text())
    client = MlflowClient(uri)
    parents = [r for r in client.search_runs([client.get_experiment_by_name("tiny").experiment_id]) if PARENT_TAG not in r.data.tags]
    latest = max(parents, key=lambda r: r.info.start_time)
    logged_files = {a.path for a in client.list_artifacts(latest.info.run_id, "report")}
    assert "report/learning_curves.png" in logged_files and "report/index.html" in logged_files


def test_figures_draw_one_series_per_group(store):
    _, uri = store
    comparison, trials = load_comparison(uri, ["tiny"])
    curves = metric_histories(uri, trials["run_id"].tolist(), ("accuracy", "val_accuracy"))
    assert len(curves) == 4 * 2 * 2  # runs x metrics x epochs
    figure = figures.learning_curves(curves, trials, comparison.keys)
    assert [len(axis.get_lines()) for axis in figure.axes] == [2, 2]
    first_line = figure.axes[0].get_lines()[0]
    assert len(first_line.get_xdata()) == 2
    by_axis = figures.metric_by_axis(comparison)
    assert len(by_axis.axes[0].containers) == 1  # one error-bar series (residual on x, nothing else varies)
    vs_cost = figures.metric_vs_cost(comparison)
    ringed = int((comparison.table["converged"] < comparison.table["n"]).any())  # 2-epoch nets: most still improving
    assert [len(axis.collections) for axis in vs_cost.axes] == [1 + ringed] * 2
    assert [len(axis.get_lines()) for axis in vs_cost.axes] == [1, 1]


def test_figures_ring_exactly_the_groups_with_an_unconverged_replicate():
    from search.reporting.tables import compare

    rows = []
    for depth, flags in ((20, [1.0, 1.0]), (32, [1.0, 0.0]), (44, [1.0, 1.0])):
        for seed, flag in zip((1, 2), flags):
            rows.append({"depth": depth, "seed": seed, "status": "FINISHED", "best_val_accuracy": 0.8 + depth / 1000 + seed / 100,
                         "converged": flag, "params": depth * 1000.0, "flops": depth * 2000.0, "train_seconds": 1.0})
    frame = pd.DataFrame(rows).assign(run_id=lambda f: [f"r{i}" for i in range(len(f))], experiment="e", varying="depth")
    comparison = compare(frame)
    by_axis = figures.metric_by_axis(comparison).axes[0]
    [rings] = [c for c in by_axis.collections if c.get_label() == "not converged"]
    assert rings.get_offsets().tolist() == [[32.0, pytest.approx(comparison.table.set_index("depth").loc[32, "mean"])]]
    assert "not converged" in [text.get_text() for text in by_axis.get_legend().get_texts()]
    for axis in figures.metric_vs_cost(comparison).axes:
        [rings] = [c for c in axis.collections if c.get_label() == "not converged"]
        assert rings.get_offsets()[:, 0].tolist() == [32000.0 if axis.get_xlabel() == "params" else 64000.0]


def test_a_group_without_one_of_the_keys_keeps_its_own_line(store):
    """A baseline has no `cells_strategy`: it must still be drawn, not dropped with its missing key."""
    _, uri = store
    comparison, trials = load_comparison(uri, ["tiny"])
    curves = metric_histories(uri, trials["run_id"].tolist(), ("accuracy", "val_accuracy"))
    trials = trials.assign(origin=["searched" if str(r) == "True" else None for r in trials["residual"]])
    figure = figures.learning_curves(curves, trials, ["residual", "origin"])
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert sorted(labels) == ["residual=False", "residual=True, origin=searched"]


def test_compare_on_many_client_logged_runs_matches_numpy(tmp_path):
    """200 trial runs written with MlflowClient (no training): the table equals numpy's aggregates."""
    import numpy as np
    from mlflow.entities import Metric, Param

    from search.tracking.tags import ROLE_TAG

    uri = f"sqlite:///{tmp_path / 'many.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("many")
    parent = client.create_run(experiment, tags={ROLE_TAG: "search"}).info.run_id
    rng = np.random.RandomState(0)
    values = {}
    for i in range(200):
        depth, residual = (20, 32, 44, 56)[i % 4], str(bool(i // 4 % 2))
        value = float(rng.rand())
        status = "FAILED" if i % 25 == 0 else "FINISHED"
        if status == "FINISHED":
            values.setdefault((depth, residual), []).append(value)
        tags = {ROLE_TAG: "trial", PARENT_TAG: parent, "archsearch.varying": "depth,residual"}
        run = client.create_run(experiment, tags=tags).info.run_id
        metrics = [Metric("best_val_accuracy", value, 0, 0)] if status == "FINISHED" else []
        params = [Param("depth", str(depth)), Param("residual", residual), Param("objective", "val_accuracy")]
        client.log_batch(run, metrics=metrics, params=params)
        client.set_terminated(run, status)
    data = compare_json(uri, "many")
    assert len(data["groups"]) == 8
    for group in data["groups"]:
        expected = values[(group["depth"], group["residual"])]
        assert group["n"] == len(expected)
        assert group["mean"] == pytest.approx(np.mean(expected))
        assert group["std"] == pytest.approx(np.std(expected, ddof=1))
    assert sum(g["failed"] for g in data["groups"]) == 8


def test_compare_out_refuses_an_existing_file_unless_forced(store, tmp_path):
    _, uri = store
    out = tmp_path / "table.md"
    out.write_text("keep me\n")
    result = runner.invoke(app, ["compare", "tiny", "--out", str(out), "--tracking-uri", uri])
    assert result.exit_code == 2 and f"--out {out} already exists: pass --force to replace it" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert out.read_text() == "keep me\n"
    result = runner.invoke(app, ["compare", "tiny", "--out", str(out), "--force", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("| residual | test_accuracy |")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["table.md"], "no temporary file is left beside it"
    assert "--force" in runner.invoke(app, ["compare", "--help"]).output


def test_compare_out_that_cannot_be_a_file_is_one_line_and_writes_nothing(store, tmp_path):
    _, uri = store
    folder = tmp_path / "tables"
    folder.mkdir()
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("notes\n")
    for out, fragment in (
        (folder, "is a folder: give a file name"),
        (tmp_path / "missing" / "table.md", f"the folder {tmp_path / 'missing'} does not exist"),
        (not_a_folder / "table.md", f"{not_a_folder} is not a folder"),
    ):
        result = runner.invoke(app, ["compare", "tiny", "--out", str(out), "--force", "--tracking-uri", uri])
        assert result.exit_code == 2 and fragment in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert list(folder.iterdir()) == [] and not (tmp_path / "missing").exists()
    assert not_a_folder.read_text() == "notes\n"


def test_report_out_refuses_a_file_and_an_earlier_report_unless_forced(store, tmp_path):
    _, uri = store
    a_file = tmp_path / "report.html"
    a_file.write_text("a page\n")
    result = runner.invoke(app, ["report", "tiny", "--out", str(a_file), "--no-log", "--tracking-uri", uri])
    assert result.exit_code == 2 and "is a file: a report is a folder of files" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and a_file.read_text() == "a page\n"
    result = runner.invoke(app, ["report", "tiny", "--out", str(a_file / "report"), "--no-log", "--tracking-uri", uri])
    assert result.exit_code == 2 and f"{a_file} is not a folder" in result.output, result.output

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "index.html").write_text("old report\n")
    (earlier / "notes.txt").write_text("mine\n")
    result = runner.invoke(app, ["report", "tiny", "--out", str(earlier), "--no-log", "--tracking-uri", uri])
    assert result.exit_code == 2 and "already holds a report (index.html): pass --force" in result.output, result.output
    assert sorted(p.name for p in earlier.iterdir()) == ["index.html", "notes.txt"]
    assert (earlier / "index.html").read_text() == "old report\n"
    result = runner.invoke(app, ["report", "tiny", "--out", str(earlier), "--force", "--no-log", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert (earlier / "index.html").read_text().startswith("<!doctype html>") and (earlier / "notes.txt").read_text() == "mine\n"


def test_report_out_makes_missing_folders_and_then_refuses_to_write_over_them(store, tmp_path):
    _, uri = store
    out = tmp_path / "papers" / "2024" / "report"
    result = runner.invoke(app, ["report", "tiny", "--out", str(out), "--no-log", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert (out / "comparison.md").read_text().startswith("| residual |")
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    result = runner.invoke(app, ["report", "tiny", "--out", str(out), "--no-log", "--tracking-uri", uri])
    assert result.exit_code == 2 and "already holds a report" in result.output and "Traceback" not in result.output
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def seeded_store(tmp_path):
    """Experiment `seeded`, logged with MlflowClient (no training): depth 20 / 56 x residual True / False,
    seeds 1-4 each; depth 56 is 0.05 above depth 20 under every seed, with little noise."""
    import numpy as np
    from mlflow.entities import Metric, Param

    from search.tracking.tags import ROLE_TAG

    uri = f"sqlite:///{tmp_path / 'seeded.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("seeded")
    parent = client.create_run(experiment, tags={ROLE_TAG: "search"}).info.run_id
    rng = np.random.RandomState(0)
    seed_effect = {seed: rng.normal(0, 0.02) for seed in (1, 2, 3, 4)}
    for depth, residual, seed in itertools.product((20, 56), ("True", "False"), (1, 2, 3, 4)):
        value = 0.8 + (0.05 if depth == 56 else 0.0) + seed_effect[seed] + rng.normal(0, 0.001)
        tags = {ROLE_TAG: "trial", PARENT_TAG: parent, "archsearch.varying": "depth,residual"}
        run = client.create_run(experiment, tags=tags).info.run_id
        params = [Param("depth", str(depth)), Param("residual", residual), Param("seed", str(seed)), Param("objective", "val_accuracy")]
        client.log_batch(run, metrics=[Metric("best_val_accuracy", value, 0, 0)], params=params)
        client.set_terminated(run, "FINISHED")
    return uri


def test_compare_baseline_pairs_by_seed_and_is_refused_with_one_line_when_it_matches_no_group(tmp_path):
    uri = seeded_store(tmp_path)
    data = compare_json(uri, "seeded", "--rows", "depth", "--baseline", "depth=20")
    groups = {g["depth"]: g for g in data["groups"]}
    assert data["baseline"] == "depth=20" and groups[20]["verdict"] == "baseline"
    assert groups[56]["verdict"] == "better" and groups[56]["test"] == "paired" and groups[56]["n"] == 8
    assert not any(g["best"] for g in data["groups"]), "a baseline that loses is not bold"
    default = compare_json(uri, "seeded", "--rows", "depth")
    assert default["baseline"] == "depth=56" and [g["best"] for g in default["groups"]] == [True, False]
    for args, fragment in (
        (["--baseline", "depth=99"], "--baseline 'depth=99': no group matches; groups: depth=20,residual=False; "),
        (["--baseline", "width=1"], "'width' is not a grouping key; keys: depth, residual"),
        (["--baseline", "depth=20"], "matches 2 groups"),
    ):
        result = runner.invoke(app, ["compare", "seeded", *args, "--tracking-uri", uri])
        assert result.exit_code == 2 and fragment in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    for command in ("compare", "report"):
        assert "--baseline" in runner.invoke(app, [command, "--help"]).output


def test_report_baseline_reaches_every_comparison_file(tmp_path):
    uri = seeded_store(tmp_path)
    out = tmp_path / "report"
    args = ["report", "seeded", "--out", str(out), "--cols", "residual", "--baseline", "depth=20,residual=True", "--no-log"]
    result = runner.invoke(app, [*args, "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "comparison.json").read_text())
    assert data["baseline"] == "depth=20,residual=True"
    verdicts = {(g["depth"], g["residual"]): g["verdict"] for g in data["groups"]}
    assert verdicts == {(20, "True"): "baseline", (56, "True"): "better", (56, "False"): "better", (20, "False"): "not resolved (n=4)"}
    csv = pd.read_csv(out / "comparison.csv")
    assert sorted(csv["verdict"]) == sorted(verdicts.values()) and not csv["best"].any()
    index = (out / "index.md").read_text()
    assert "baseline depth=20,residual=True" in index and "| verdict | needed |" in index and "**" not in index
    assert "residual=False | residual=True |" in (out / "comparison.md").read_text(), "--cols still pivots"


def test_report_top_keeps_the_best_groups_and_the_baseline_with_the_statistics_of_all(tmp_path):
    uri = seeded_store(tmp_path)
    out = tmp_path / "report"
    write_report(uri, ["seeded"], out, top=1, baseline="depth=20,residual=True", log_to_mlflow=False)
    groups = json.loads((out / "comparison.json").read_text())["groups"]
    full, _ = load_comparison(uri, ["seeded"], baseline="depth=20,residual=True")
    best = full.table.iloc[0]
    assert [(g["depth"], g["residual"]) for g in groups] == [(best["depth"], best["residual"]), (20, "True")]
    assert groups[0]["p_holm"] == pytest.approx(best["p_holm"], rel=1e-4), "Holm over all four groups, not the two shown"
