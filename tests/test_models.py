"""Trained models kept in MLflow (`training.save_models`), taken home with `export` and the Python API."""

import json

import keras
import mlflow.artifacts
import mlflow.keras
import pytest
from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

import archsearch
from search.cli import app
from search.data import load_data
from search.orchestration.run import run_search
from search.tracking.tags import MODEL_GROUP_TAG, MODEL_REPLICATE_TAG, MODEL_TAG, NOTE_TAG, PARENT_TAG, RUNS_VIEW_TAG

runner = CliRunner()


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """`tiny` with two replicates per trial, run through the Python API; returns (root, uri, result, ended)."""
    root = tmp_path_factory.mktemp("models")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    space = write(root / "tiny.yaml", TINY_SPACE.replace("  seed: 7", "  seed: 7\n  repeats: 2"))
    ended = []
    result = archsearch.run(space, tracking_uri=uri, tuner_dir=root / "tuner", on_trial=lambda *event: ended.append(event))
    return root, uri, result, ended


def trial_runs(uri, experiment):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return [run for run in client.search_runs([found.experiment_id]) if PARENT_TAG in run.data.tags]


def validation(space_path):
    data = load_data(archsearch.load_space(space_path).dataset)
    return data.x_val, data.y_val


def test_the_best_trial_alone_keeps_the_model_of_its_best_replicate(searched):
    root, uri, result, ended = searched
    assert [status for _, status, _ in ended] == ["FINISHED", "FINISHED"]  # the callback saw each trial end
    runs = trial_runs(uri, "tiny")
    holders = [run for run in runs if run.data.tags.get(MODEL_TAG) == "model"]
    best = max(runs, key=lambda run: run.data.metrics["best_val_accuracy"])
    assert [run.info.run_id for run in holders] == [best.info.run_id], "save_models: best keeps one model per search"
    other = next(run for run in runs if run is not best)
    assert MlflowClient(uri).list_artifacts(other.info.run_id, "model") == [], "the beaten trial's model was deleted"
    replicate = int(best.data.tags[MODEL_REPLICATE_TAG])
    scores = [best.data.metrics[f"best_val_accuracy/replicate_{i}"] for i in range(2)]
    assert scores[replicate] == max(scores), "the replicate kept is the one validation selects"

    # MLflow's own Keras flavour loads it (downloaded with an explicit store: set_tracking_uri leaks into the environment)
    folder = mlflow.artifacts.download_artifacts(run_id=best.info.run_id, artifact_path="model", tracking_uri=uri)
    model = mlflow.keras.load_model(folder)
    x_val, y_val = validation(root / "tiny.yaml")
    logged = model.evaluate(x_val, y_val, verbose=0, return_dict=True)
    assert logged["accuracy"] == pytest.approx(scores[replicate], abs=1e-6), "the selected epoch's weights, not the last epoch's"
    assert model.input_shape[1:] == x_val.shape[1:]


def test_export_writes_the_best_model_and_registers_it(searched):
    root, uri, _, _ = searched
    out = root / "best.keras"
    result = runner.invoke(app, ["export", "tiny", "--out", str(out), "--register", "tiny-best", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    best = max(trial_runs(uri, "tiny"), key=lambda run: run.data.metrics["best_val_accuracy"])
    assert best.info.run_id in result.output and "registered as tiny-best version 1" in result.output
    model = keras.saving.load_model(out)
    x_val, y_val = validation(root / "tiny.yaml")
    replicate = best.data.tags[MODEL_REPLICATE_TAG]
    accuracy = model.evaluate(x_val, y_val, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == pytest.approx(best.data.metrics[f"best_val_accuracy/replicate_{replicate}"], abs=1e-6)
    version = MlflowClient(uri).get_model_version("tiny-best", "1")
    assert version.run_id == best.info.run_id

    again = runner.invoke(app, ["export", "tiny", "--out", str(out), "--tracking-uri", uri])
    assert again.exit_code == 2 and "already exists: pass --force" in again.output
    other = next(run for run in trial_runs(uri, "tiny") if run.info.run_id != best.info.run_id)
    refused = runner.invoke(app, ["export", "tiny", "--run", other.info.run_id, "--out", str(root / "other.keras"), "--tracking-uri", uri])
    assert refused.exit_code == 2 and "keeps no model" in refused.output and not (root / "other.keras").exists()


def test_the_python_api_answers_as_the_cli_does(searched):
    root, uri, result, _ = searched
    frame = archsearch.trials("tiny", tracking_uri=uri)
    assert sorted(frame["run_id"]) == sorted(result.trials["run_id"])
    assert {"residual", "test_accuracy", "best_val_accuracy", "run_name", "model"} <= set(frame.columns)
    comparison = archsearch.compare("tiny", tracking_uri=uri)
    cli = json.loads(runner.invoke(app, ["compare", "tiny", "--format", "json", "--tracking-uri", uri]).output)
    assert json.loads(archsearch.render(comparison, "json")) == cli
    model = archsearch.best_model("tiny", tracking_uri=uri)
    x_val, _ = validation(root / "tiny.yaml")
    assert model.predict(x_val[:3], verbose=0).shape == (3, 2 + 8)
    with pytest.raises(archsearch.UserError, match="no experiment 'nope'"):
        archsearch.trials("nope", tracking_uri=uri)
    assert set(archsearch.__all__) <= set(dir(archsearch))


def test_runs_are_named_by_what_varies_and_the_parent_says_what_it_asks(searched):
    _, uri, result, _ = searched
    runs = trial_runs(uri, "tiny")
    assert sorted(run.info.run_name for run in runs) == ["residual=False #0", "residual=True #1"]
    parent = MlflowClient(uri).get_run(result.parent_id)
    note = parent.data.tags[NOTE_TAG]
    assert "residual" in note and "archsearch compare tiny" in note
    best = max(runs, key=lambda run: run.data.metrics["best_val_accuracy"])
    assert parent.data.tags["archsearch.best_run"] == best.info.run_id
    for key in ("test_accuracy", "params", "best_val_accuracy"):  # the collapsed parent row shows the best trial
        assert parent.data.metrics[key] == pytest.approx(best.data.metrics[key])
    view = json.loads(MlflowClient(uri).get_experiment(result.experiment_id).tags[RUNS_VIEW_TAG])
    assert {"params.`residual`", "metrics.`test_accuracy`", "metrics.`best_val_accuracy`"} <= set(view["selectedColumns"])


def test_groups_keep_one_model_each_and_none_keeps_nothing(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    text = TINY_SPACE.replace("epochs: 2", "epochs: 1")
    grouped = write(tmp_path / "grouped.yaml", text.replace("experiment: tiny", "experiment: grouped"))
    run_search(archsearch.load_space(grouped), grouped, tracking_uri=uri, tuner_dir=tmp_path / "tuner", model_groups=["residual"])
    holders = [run for run in trial_runs(uri, "grouped") if MODEL_TAG in run.data.tags]
    assert sorted(run.data.tags[MODEL_GROUP_TAG] for run in holders) == ["residual=False", "residual=True"]

    none = write(tmp_path / "none.yaml", text.replace("experiment: tiny", "experiment: none").replace("  epochs: 1", "  epochs: 1\n  save_models: none")
                 .replace("residual: [false, true]", "residual: true"))  # one trial is enough to keep nothing
    run_search(archsearch.load_space(none), none, tracking_uri=uri, tuner_dir=tmp_path / "tuner")
    client = MlflowClient(uri)
    assert all(client.list_artifacts(run.info.run_id, "model") == [] for run in trial_runs(uri, "none"))
    refused = runner.invoke(app, ["export", "none", "--out", str(tmp_path / "m.keras"), "--tracking-uri", uri])
    assert refused.exit_code == 2 and "keeps a model" in refused.output and "save_models: none" in refused.output
    assert not list(tmp_path.glob("*.keras*")), "nothing half-written"

