"""Studies: every space over every seed into one experiment, a report and a methods record; and the
determinism claim: the same seeds on CPU reproduce the metrics exactly."""

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_SPACE, write
from typer.testing import CliRunner

from search.cli import app
from search.errors import SpaceError

runner = CliRunner()


def make_study(folder, extra=""):
    write(folder / "space.yaml", TINY_SPACE)
    write(folder / "study.yaml", "name: tiny_study\nspaces: [space.yaml]\nseeds: [3, 4]\nrows: [residual]\n" + extra)
    return folder


# A protocol fixed in git before the runs, a baseline for the main table, and one further comparison
PROTOCOLLED = """\
protocol: PROTOCOL.md
baseline: residual=True
comparisons:
  - name: training_loss
    question: Do plain and residual nets reach the same training loss?
    metric: loss
    baseline: residual=True
"""


def commit_protocol(folder) -> str:
    write(folder / "PROTOCOL.md", "# Protocol\n\nHypothesis: the residual net trains better.\n")
    git = lambda *args: subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout.strip()  # noqa: E731
    git("init", "-q")
    git("add", "PROTOCOL.md")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "Protocol")
    return git("rev-parse", "HEAD")


def run_study(folder, store):
    result = runner.invoke(
        app, ["study", str(folder), "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}", "--tuner-dir", str(store / "tuner")]
    )
    assert result.exit_code == 0, result.output
    return json.loads((folder / "results" / "comparison.json").read_text())


def test_a_study_runs_every_seed_and_reproduces_exactly(tmp_path):
    first_folder, second_folder = make_study(tmp_path / "a", PROTOCOLLED), make_study(tmp_path / "b")
    protocol_commit = commit_protocol(first_folder)
    first = run_study(first_folder, tmp_path / "store_a")
    second = run_study(second_folder, tmp_path / "store_b")
    assert [g["n"] for g in first["groups"]] == [2, 2], "two seeds per candidate"
    for a, b in zip(first["groups"], second["groups"], strict=True):
        assert {k: a[k] for k in ("residual", "mean", "std", "n", "params", "flops")} == {
            k: b[k] for k in ("residual", "mean", "std", "n", "params", "flops")
        }
    record = json.loads((first_folder / "results" / "record.json").read_text())
    assert record["experiment"] == "study-tiny_study" and record["seeds"] == [3, 4]
    assert [s["seed"] for s in record["searches"]] == [3, 4]
    assert all(s["trials_finished"] == 2 and len(s["data_hash"]) == 16 for s in record["searches"])
    for key in ("data_hash", "train_hash", "validation_hash", "test_hash"):  # the seeds move the models, not the split
        assert record["searches"][0][key] == record["searches"][1][key], key
    assert record["searches"][0]["replicate_seeds"] != record["searches"][1]["replicate_seeds"]
    assert record["search_cost_hours"] > 0 and "tensorflow" in record["versions"]
    assert all(len(s["git_commit"]) >= 7 for s in record["searches"])
    replicates = pd.read_csv(first_folder / "results" / "replicates.csv")
    assert len(replicates) == len(record["replicates"]) == 4 and set(replicates["replicate_seed"]) == {300, 400}
    assert replicates["latest"].all() and replicates["parent_id"].nunique() == 2
    assert replicates["test_accuracy"].between(0, 1).all() and set(replicates["residual"]) == {True, False}
    means = replicates.groupby("residual")["test_accuracy"].mean()
    assert {g["residual"]: g["mean"] for g in first["groups"]} == pytest.approx({str(k): v for k, v in means.items()})
    assert record["statistics"]["metric"] == "test_accuracy" and "Holm" in record["statistics"]["correction"]
    assert [r["trials"] for r in record["runs"]] == [2, 2] and record["all_runs_cost_hours"] == pytest.approx(record["search_cost_hours"])
    methods = (first_folder / "results" / "methods.md").read_text()
    assert "| space.yaml | 3 |" in methods and "Seeds: 3, 4" in methods and "Every search run" in methods
    for name in ("index.html", "learning_curves.png", "comparison.md"):
        assert (first_folder / "results" / name).is_file()

    assert first["baseline"] == "residual=True"
    assert record["statistics"]["baseline"] == "residual=True", "the record names the table's baseline"
    assert [g["verdict"] for g in first["groups"] if g["residual"] == "True"] == ["baseline"]
    assert record["protocol"]["file"] == "PROTOCOL.md" and record["protocol"]["first_commit"]["commit"] == protocol_commit
    assert record["first_run_started"] and f"first committed {record['protocol']['first_commit']['date']}" in methods
    further = json.loads((first_folder / "results" / "comparisons.json").read_text())["training_loss"]
    assert further["metric"] == "loss" and further["baseline"] == "residual=True"
    assert further["command"] == "archsearch compare study-tiny_study --metric loss --baseline residual=True"
    losses = replicates.groupby("residual")["loss"].mean()
    assert {g["residual"]: g["mean"] for g in further["groups"]} == pytest.approx({str(k): v for k, v in losses.items()})
    page = (first_folder / "results" / "comparisons.md").read_text()
    assert "## training_loss\n\nDo plain and residual nets reach the same training loss?" in page and "| baseline |" in page
    assert not (second_folder / "results" / "comparisons.md").exists() and json.loads(
        (second_folder / "results" / "record.json").read_text())["protocol"] is None


def test_a_study_changed_mid_run_is_refused_until_started_fresh(tmp_path, monkeypatch):
    """A protocol change after a study's runs began (fewer epochs, say) must not continue the interrupted
    search under the new space; `study --fresh` starts it over and the abandoned runs stay on record."""
    from faults import faulty_writer

    from search import files
    from search.tracking.client import experiment_runs
    from search.tracking.tags import SEARCH_ROLE

    folder = make_study(tmp_path / "s")
    (folder / "study.yaml").write_text((folder / "study.yaml").read_text().replace("seeds: [3, 4]", "seeds: [3]"))
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    study = lambda *extra: runner.invoke(app, ["study", str(folder), "--tracking-uri", uri, "--tuner-dir", str(tuner), *extra])  # noqa: E731
    mark = tmp_path / "enospc.mark"
    with monkeypatch.context() as patched:  # the disk fills once the first trial has ended: the search stops there
        patched.setattr(files, "_write_all", faulty_writer("enospc", "oracle.json", '"end_order": ["0"]', 1, mark, files._write_all))
        interrupted = study()
    assert mark.exists() and interrupted.exit_code == 2 and "No space left on device" in interrupted.output, interrupted.output
    (folder / "space.yaml").write_text((folder / "space.yaml").read_text().replace("epochs: 2", "epochs: 3"))
    refused = study()
    assert refused.exit_code == 2 and "training.epochs: 2 -> 3" in refused.output and "--fresh" in refused.output, refused.output
    assert not (folder / "results").exists()
    fresh = study("--fresh")
    assert fresh.exit_code == 0, fresh.output
    searches = experiment_runs(uri, "study-tiny_study", SEARCH_ROLE)["status"]
    assert sorted(searches) == ["FAILED", "FINISHED"], "the full disk ended the first search FAILED; the fresh one finished"
    record = json.loads((folder / "results" / "record.json").read_text())
    assert [s["seed"] for s in record["searches"]] == [3] and record["searches"][0]["trials_finished"] == 2
    assert sorted(r["status"] for r in record["runs"]) == ["FAILED", "FINISHED"], "the abandoned search counts in the record"


def test_a_study_without_a_full_variant_says_so(tmp_path):
    folder = make_study(tmp_path / "s")
    result = runner.invoke(app, ["study", str(folder), "--full"])
    assert result.exit_code == 2 and "no full-scale variant" in result.output


def test_the_shipped_studies_load_and_their_results_are_committed():
    from conftest import REPO

    from search.spec.study import load_study

    folders = sorted(p.parent for p in (REPO / "experiments").glob("*/study.yaml"))
    assert {f.name for f in folders} >= {"degradation", "bn_placement", "vgg_depth", "kernel_size", "conv_kind", "nasnet", "pareto"}
    for folder in folders:
        study, plan = load_study(folder)
        judged = [*plan.spaces, *((path, target) for _, _, path, target in plan.transfers)]
        assert study.protocol and (plan.spaces or study.fronts), folder.name
        assert all(len(study.seeds) * space.search.repeats >= 5 for _, space in judged), f"{folder.name}: five replicates per arm"
        assert study.fronts is None or len(study.seeds) >= 5, f"{folder.name}: five paired seeds of each search"
        assert "Run it:" in (folder / "README.md").read_text()
        record = json.loads((folder / "results" / "record.json").read_text())
        searches = len(plan.searches) + len(plan.spaces) + len(plan.transfers)
        assert record["seeds"] == study.seeds and len(record["searches"]) == len(study.seeds) * searches


@pytest.mark.parametrize(
    "extra, message",
    [
        ("protocol: PROTOCOL.md\n", "protocol: no file 'PROTOCOL.md' in"),
        ("comparisons:\n  - {name: a, question: q}\n  - {name: a, question: r}\n", "comparisons: each comparison needs its own name; a is used twice"),
        ("comparisons:\n  - {name: a}\n", "question"),
    ],
)
def test_a_study_refuses_a_missing_protocol_and_unnamed_or_twice_named_comparisons(tmp_path, extra, message):
    result = runner.invoke(app, ["study", str(make_study(tmp_path / "s", extra))])
    assert result.exit_code == 2 and "Traceback" not in result.output and message in result.output, result.output
    assert not (tmp_path / "s" / "results").exists()


def test_a_transfer_must_name_one_of_the_study_searches(tmp_path):
    from search.spec.study import load_study

    folder = make_study(tmp_path / "s")
    text = (folder / "study.yaml").read_text()
    (folder / "study.yaml").write_text(text + "transfers:\n  - {search: nowhere.yaml, target: space.yaml}\n")
    with pytest.raises(SpaceError, match="transfers: search 'nowhere.yaml' is not one of the study's searches"):
        load_study(folder)


def test_a_search_whose_trials_logged_no_time_counts_zero_not_nan():
    import pandas as pd

    from search.reporting.records import search_record

    failed_only = pd.DataFrame({"status": ["FAILED"], "start_time": [0], "end_time": [5000]})
    record = search_record(Path("space.yaml"), 1, failed_only)
    assert record["train_seconds"] == 0.0 and record["trial_seconds"] == 0.0 and record["trials_failed"] == 1


def test_a_study_refuses_a_cell_search_that_sees_what_its_baselines_are_judged_on(tmp_path):
    """Checked before anything runs: the search's subset is larger than the baseline's training part."""
    cells = "name: cells\ndataset: {name: digits, input_size: 8, subset: 1200}\nmodel: {family: cells, blocks: 2, stages: 2, cells_per_stage: 1, filters: 4}\n"
    cells += "search: {strategy: random, max_trials: 2}\n"
    write(tmp_path / "s" / "cells.yaml", cells)
    write(tmp_path / "s" / "space.yaml", TINY_SPACE.replace("  subset: 300\n", ""))
    write(tmp_path / "s" / "study.yaml", "name: leaky\nsearches: [cells.yaml]\nspaces: [space.yaml]\nseeds: [1]\n")
    store = tmp_path / "store"
    result = runner.invoke(app, ["study", str(tmp_path / "s"), "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}", "--tuner-dir", str(store / "tuner")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    line = result.output.strip()
    assert "cells.yaml: dataset.subset: " in line and "images the search trains and selects on are among the" in line and "in space.yaml" in line
    assert not store.exists() or not any(store.iterdir()), "nothing ran"
