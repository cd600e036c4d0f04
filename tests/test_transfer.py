"""A real cell search (regularized evolution) and the transfer of its best cells, read back from MLflow."""

import pytest
from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.spec.genotypes import parse_genotype
from search.tracking.tags import PARENT_TAG, SOURCE_SEARCH_TAG, SOURCE_TRIAL_TAG

CELL_SEARCH = """\
name: cell_search
dataset: {name: digits, input_size: 8, subset: 200, validation_split: 0.3}
model: {family: cells, blocks: 2, stages: 2, cells_per_stage: 1, filters: 4}
training: {optimizer: adam, learning_rate: 0.01, batch_size: 32, epochs: 1}
search: {strategy: evolution, max_trials: 4, population_size: 2, sample_size: 2, seed: 3}
"""

TARGET = """\
name: cell_target
dataset: {name: digits, input_size: 8, subset: 300, validation_split: 0.3}
model: {family: cells, stages: 2, cells_per_stage: 2, filters: 6}
training: {optimizer: adam, learning_rate: 0.01, batch_size: 32, epochs: 1}
"""


def runs_of(client, experiment):
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])
    return [r for r in runs if PARENT_TAG not in r.data.tags], [r for r in runs if PARENT_TAG in r.data.tags]


@pytest.fixture(scope="module")
def transferred(tmp_path_factory):
    root = tmp_path_factory.mktemp("cells")
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    options = ["--tracking-uri", uri, "--tuner-dir", str(root / "tuner")]
    searched = CliRunner().invoke(app, ["run", str(write(root / "search.yaml", CELL_SEARCH)), *options])
    assert searched.exit_code == 0, searched.output
    moved = CliRunner().invoke(app, ["transfer", "cell_search", str(write(root / "target.yaml", TARGET)), "--top", "2", *options])
    assert moved.exit_code == 0, moved.output
    return root, uri, options, moved.output


def test_a_cell_search_logs_genotypes_figures_and_its_cost(transferred):
    _, uri, _, _ = transferred
    client = MlflowClient(uri)
    (parent,), trials = runs_of(client, "cell_search")
    assert len(trials) == 4 and all(t.info.status == "FINISHED" for t in trials)
    for trial in trials:
        genotype = parse_genotype(trial.data.params["genotype"])
        assert len(genotype.normal) == 2 and "normal_1_op_a" not in trial.data.params
        assert "genotype.png" in [a.path for a in client.list_artifacts(trial.info.run_id)]
    train_total = sum(t.data.metrics["train_seconds"] for t in trials)
    assert parent.data.metrics["search_hours"] == pytest.approx(train_total / 3600)
    assert parent.data.metrics["trials_finished"] == 4 and parent.data.tags["device"] == "CPU"
    assert parent.data.params["strategy"] == "evolution" and parent.data.params["population_size"] == "2"


def test_transfer_retrains_the_best_distinct_cells_and_links_each_run_to_its_source(transferred):
    _, uri, _, output = transferred
    client = MlflowClient(uri)
    (source_parent,), source_trials = runs_of(client, "cell_search")
    (parent,), trials = runs_of(client, "cell_target")
    ranked = sorted(source_trials, key=lambda t: -t.data.metrics["best_val_accuracy"])
    best = list(dict.fromkeys(t.data.params["genotype"] for t in ranked))[:2]
    assert sorted(t.data.params["genotype"] for t in trials) == sorted(best)
    by_id = {t.info.run_id: t for t in source_trials}
    for trial in trials:
        source = by_id[trial.data.tags[SOURCE_TRIAL_TAG]]
        assert source.data.params["genotype"] == trial.data.params["genotype"]
        assert trial.data.tags[SOURCE_SEARCH_TAG] == source_parent.info.run_id
        assert trial.data.metrics["search_hours"] == pytest.approx(source_parent.data.metrics["search_hours"])
        assert trial.data.params["cells_per_stage"] == "2" and trial.data.params["filters"] == "6"
        assert trial.data.params["cells_strategy"] == "evolution" and trial.data.params["cells_from"] == "cell_search"
    assert parent.data.tags[SOURCE_SEARCH_TAG] == source_parent.info.run_id
    assert "transferring 2 cell(s)" in output and "cell_search, evolution, 4 trials" in output


def test_compare_shows_the_search_cost_beside_accuracy(transferred):
    _, uri, _, _ = transferred
    result = CliRunner().invoke(app, ["compare", "cell_target", "--tracking-uri", uri, "--format", "csv"])
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split(",")
    assert header[0] == "genotype" and "search_hours" in header and "params" in header


@pytest.mark.parametrize(
    "source, target, fragment",
    [
        ("no_such_search", TARGET, "no experiment 'no_such_search'"),
        ("cell_search", TINY_SPACE, "model.family: a transfer's target must be a cells space, not 'resnet'"),
        ("cell_search", TARGET.replace("filters: 6}", "filters: 6, genotype: 'normal: identity(0)+identity(1); reduce: identity(0)+identity(1)'}"),
         "model.genotype: leave it out of a transfer's target"),
        ("cell_target", TARGET, "no finished cell search of any space in experiment 'cell_target'"),
        # 250 images of which 175 train: 25 of the search's 200 would be among the target's validation images
        ("cell_search", TARGET.replace("subset: 300", "subset: 250"),
         "dataset.subset: 25 of the 200 images the search trains and selects on are among the 434 validation and test images"),
        ("cell_search", TARGET.replace("subset: 300", "subset: 300, seed: 5"), "images the search trains and selects on are among the"),
    ],
)
def test_a_bad_transfer_exits_2_and_writes_nothing(transferred, source, target, fragment):
    root, uri, options, _ = transferred
    client = MlflowClient(uri)
    before = sorted(e.name for e in client.search_experiments())
    runs_before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    result = CliRunner().invoke(app, ["transfer", source, str(write(root / "bad_target.yaml", target)), *options])
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output, result.output
    assert sorted(e.name for e in client.search_experiments()) == before
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs_before
