"""`archsearch ensemble`: the K best kept models by validation, averaged, judged on the test part and logged;
the report shows each ensemble beside its members."""

import keras
import mlflow.artifacts
import mlflow.keras
import numpy as np
import pytest
from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.data import load_data
from search.orchestration.ensemble import accuracy, average
from search.spec.reader import load_space
from search.tracking.tags import ENSEMBLE_ROLE, MEMBERS_TAG, PARENT_TAG, ROLE_TAG

runner = CliRunner()


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """`tiny` over three widths, every trial keeping its model; returns (root, uri)."""
    root = tmp_path_factory.mktemp("ensemble")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    text = (TINY_SPACE.replace("width: 0.5", "width: [0.25, 0.5, 1.0]").replace("residual: [false, true]", "residual: true")
            .replace("epochs: 2", "epochs: 2\n  save_models: all"))
    space = write(root / "tiny.yaml", text)
    result = runner.invoke(app, ["run", str(space), "--tracking-uri", uri, "--tuner-dir", str(root / "tuner")])
    assert result.exit_code == 0, result.output
    return root, uri


def trials_of(uri):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    return [r for r in runs if PARENT_TAG in r.data.tags]


def member_model(uri, run_id):
    folder = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", tracking_uri=uri)
    return mlflow.keras.load_model(folder)


def test_the_ensemble_averages_the_best_members_by_validation_and_is_judged_on_test(kept):
    root, uri = kept
    result = runner.invoke(app, ["ensemble", "tiny", "--top", "2", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], f"tags.`{ROLE_TAG}` = '{ENSEMBLE_ROLE}'")
    assert run.info.status == "FINISHED" and run.info.run_id in result.output
    trials = trials_of(uri)
    by_validation = sorted(trials, key=lambda t: -t.data.metrics["best_val_accuracy"])
    members = run.data.tags[MEMBERS_TAG].split(",")
    assert members == [t.info.run_id for t in by_validation[:2]], "the two best by validation, best first"

    data = load_data(load_space(root / "tiny.yaml").dataset)
    models = [member_model(uri, run_id) for run_id in members]
    for rank, (trial, model) in enumerate(zip(by_validation, models), start=1):
        # the test part rebuilt for the ensemble is the one each member was judged on in its search
        assert run.data.metrics[f"member_{rank}/test_accuracy"] == pytest.approx(trial.data.metrics["test_accuracy"], abs=1e-6)
    mean = np.mean([model.predict(data.x_test, verbose=0) for model in models], axis=0)
    assert run.data.metrics["test_accuracy"] == pytest.approx(np.mean(mean.argmax(axis=1) == data.y_test))
    assert run.data.metrics["best_member_test_accuracy"] == max(run.data.metrics[f"member_{i}/test_accuracy"] for i in (1, 2))


def test_the_ensembles_prediction_is_the_mean_of_its_members_on_a_fixed_batch(kept):
    root, uri = kept
    batch = load_data(load_space(root / "tiny.yaml").dataset).x_test[:16]
    models = [member_model(uri, t.info.run_id) for t in trials_of(uri)]
    probabilities, each = average(models, batch)
    direct = [keras.ops.convert_to_numpy(model(batch, training=False)) for model in models]
    assert np.allclose(each, direct, atol=1e-6)
    assert np.allclose(probabilities, (direct[0] + direct[1] + direct[2]) / 3, atol=1e-6)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    labels = probabilities.argmax(axis=1)
    assert accuracy(probabilities, labels) == 1.0 and accuracy(probabilities, (labels + 1) % 10) == 0.0


def test_the_report_shows_each_ensemble_beside_its_members(kept):
    root, uri = kept
    made = runner.invoke(app, ["ensemble", "tiny", "--top", "3", "--tracking-uri", uri])
    assert made.exit_code == 0 and "against member 1, the single model validation picks" in made.output
    assert runner.invoke(app, ["ensemble", "tiny", "--top", "2", "--tracking-uri", uri]).exit_code == 0  # the same members again
    out = root / "report"
    result = runner.invoke(app, ["report", "tiny", "--out", str(out), "--tracking-uri", uri, "--force"])
    assert result.exit_code == 0, result.output
    table = (out / "ensembles.md").read_text()
    assert "ensemble of 3" in table and "member 3" in table
    client = MlflowClient(uri)
    ensembles = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], f"tags.`{ROLE_TAG}` = '{ENSEMBLE_ROLE}'")
    for run in ensembles:
        assert f"{run.data.metrics['test_accuracy']:.4f}" in table
    names = {t.info.run_name for t in trials_of(uri)}
    assert all(name in table for name in names)
    assert table.count("| ensemble top-2 | ensemble of 2 |") == 1, "one row per set of members: the latest ensemble of them"
    assert "<h2>Ensembles</h2>" in (out / "index.html").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--top", "5"], "--top 5: only 3 trial(s) of experiment 'tiny' keep a model"),
    (["--top", "1"], "Invalid value for '--top'"),
    (["--where", "width == 7"], "keeps a model matching --where"),
])
def test_an_ensemble_that_cannot_be_made_is_refused_in_one_line(kept, args, message):
    _, uri = kept
    result = runner.invoke(app, ["ensemble", "tiny", *args, "--tracking-uri", uri])
    assert result.exit_code == 2 and message in result.output, result.output


def study_folder(root, save_models="all"):
    text = (TINY_SPACE.replace("width: 0.5", "width: [0.25, 0.5, 1.0]").replace("residual: [false, true]", "residual: true")
            .replace("epochs: 2", f"epochs: 1\n  save_models: {save_models}"))
    write(root / "tiny.yaml", text)
    write(root / "study.yaml", "name: ens\nspaces: [tiny.yaml]\nseeds: [1, 2]\nensembles: [{space: tiny.yaml, top: 2}]\n")
    return root


def test_a_study_lists_ensembles_and_pairs_each_with_the_single_model_by_seed(tmp_path):
    folder = study_folder(tmp_path / "study")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = ["study", str(folder), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner")]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("study-ens").experiment_id
    ensembles = client.search_runs([experiment], f"tags.`{ROLE_TAG}` = '{ENSEMBLE_ROLE}'")
    assert sorted(run.data.params["where"] for run in ensembles) == ["space == 'tiny-seed1'", "space == 'tiny-seed2'"]
    record = __import__("json").loads((folder / "results" / "ensemble_gain.json").read_text())[0]
    by_seed = {int(run.data.params["where"].rstrip("'").rsplit("seed", 1)[1]): run for run in ensembles}
    assert record["ensemble"] == [by_seed[s].data.metrics["test_accuracy"] for s in (1, 2)]
    assert record["single"] == [by_seed[s].data.metrics["member_1/test_accuracy"] for s in (1, 2)]
    assert record["test"] == "paired" and record["diff"] == pytest.approx(np.mean(np.subtract(record["ensemble"], record["single"])))
    assert "Ensemble − single (paired t-test by seed, n = 2)" in (folder / "results" / "ensemble_gain.md").read_text()
    assert "ensemble of 2" in (folder / "results" / "ensembles.md").read_text()
    again = runner.invoke(app, command)  # run again: everything is there, nothing is made twice
    assert again.exit_code == 0, again.output
    assert len(client.search_runs([experiment], f"tags.`{ROLE_TAG}` = '{ENSEMBLE_ROLE}'")) == 2


@pytest.mark.parametrize(("save_models", "top", "message"), [
    ("best", 2, "training.save_models: an ensemble of the 2 best kept models needs save_models: all"),
    ("all", 5, "ensembles.top: 5 members, but tiny.yaml trains 3 trial(s) per seed"),
])
def test_a_study_ensemble_that_cannot_be_made_is_refused_before_anything_runs(tmp_path, save_models, top, message):
    folder = study_folder(tmp_path / "study", save_models=save_models)
    write(folder / "study.yaml", (folder / "study.yaml").read_text().replace("top: 2", f"top: {top}"))
    result = runner.invoke(app, ["study", str(folder), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "mlflow.db").exists()
