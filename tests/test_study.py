"""Studies: every space over every seed into one experiment, a report and a methods record; and the
determinism claim: the same seeds on CPU reproduce the metrics exactly."""

import json
from pathlib import Path

import pytest
from conftest import TINY_SPACE, write
from typer.testing import CliRunner

from search.cli import app
from search.errors import SpaceError

runner = CliRunner()


def make_study(folder):
    write(folder / "space.yaml", TINY_SPACE)
    write(folder / "study.yaml", "name: tiny_study\nspaces: [space.yaml]\nseeds: [3, 4]\nrows: [residual]\n")
    return folder


def run_study(folder, store):
    result = runner.invoke(
        app, ["study", str(folder), "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}", "--tuner-dir", str(store / "tuner")]
    )
    assert result.exit_code == 0, result.output
    return json.loads((folder / "results" / "comparison.json").read_text())


def test_a_study_runs_every_seed_and_reproduces_exactly(tmp_path):
    first_folder, second_folder = make_study(tmp_path / "a"), make_study(tmp_path / "b")
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
    assert record["searches"][0]["data_hash"] != record["searches"][1]["data_hash"], "each seed has its own split"
    assert record["search_cost_hours"] > 0 and "tensorflow" in record["versions"]
    methods = (first_folder / "results" / "methods.md").read_text()
    assert "| space.yaml | 3 |" in methods and "Seeds: 3, 4" in methods
    for name in ("index.html", "learning_curves.png", "comparison.md"):
        assert (first_folder / "results" / name).is_file()


def test_a_study_without_a_full_variant_says_so(tmp_path):
    folder = make_study(tmp_path / "s")
    result = runner.invoke(app, ["study", str(folder), "--full"])
    assert result.exit_code == 2 and "no full-scale variant" in result.output


def test_the_shipped_studies_load_and_their_results_are_committed():
    from conftest import REPO

    from search.spec.study import load_study

    folders = sorted(p.parent for p in (REPO / "experiments").glob("*/study.yaml"))
    assert {f.name for f in folders} >= {"degradation", "bn_placement", "vgg_depth", "kernel_size", "conv_kind", "nasnet"}
    for folder in folders:
        study, plan = load_study(folder)
        assert len(study.seeds) >= 3 and plan.spaces
        assert "Run it:" in (folder / "README.md").read_text()
        record = json.loads((folder / "results" / "record.json").read_text())
        searches = len(plan.searches) + len(plan.spaces) + len(plan.transfers)
        assert record["seeds"] == study.seeds and len(record["searches"]) == len(study.seeds) * searches


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
