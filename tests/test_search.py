"""End to end: `archsearch run` on a real tiny search, read back from the MLflow store."""

import json
import os

import pytest
from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.tracking.tags import MODEL_TAG, PARENT_TAG

runner = CliRunner()


def run_cli(*args):
    result = runner.invoke(app, [*args])
    return result


def store_runs(uri):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    trials = [r for r in runs if PARENT_TAG in r.data.tags]
    return client, parents, trials


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    """One real 2-trial grid search (plain vs residual ResNet-8), shared by the assertions below."""
    root = tmp_path_factory.mktemp("search")
    space = write(root / "tiny.yaml", TINY_SPACE.replace("latency_calls: 0", "latency_calls: 5"))
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    result = run_cli("run", str(space), "--tracking-uri", uri, "--tuner-dir", str(root / "tuner"))
    assert result.exit_code == 0, result.output
    return root, space, uri, result.output


def test_one_parent_run_and_one_nested_finished_run_per_trial(finished_search):
    _, _, uri, output = finished_search
    client, parents, trials = store_runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(trials) == 2
    assert {t.data.tags[PARENT_TAG] for t in trials} == {parents[0].info.run_id}
    assert all(t.info.status == "FINISHED" for t in trials)
    assert sorted(t.data.params["residual"] for t in trials) == ["False", "True"]
    assert "candidates ranked by best_val_accuracy, reported on test_accuracy" in output
    assert f" ui --tracking-uri {uri}\n" in output  # the hint, whole on its line


def test_trial_runs_carry_params_curves_costs_and_provenance(finished_search):
    _, space, uri, _ = finished_search
    client, parents, trials = store_runs(uri)
    trial = trials[0]
    params = trial.data.params
    for name in ("depth", "bn", "conv", "kernel", "width", "learning_rate", "batch_size", "epochs", "seed", "dataset"):
        assert name in params, name
    assert params["depth"] == "8" and params["epochs"] == "2" and params["dataset"] == "digits"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        history = client.get_metric_history(trial.info.run_id, key)
        assert [m.step for m in history] == [1, 2], key
    metrics = trial.data.metrics
    assert metrics["params"] > 1000 and metrics["flops"] == 2 * metrics["mult_adds"] > 0
    assert 0 < metrics["train_seconds"] <= metrics["trial_seconds"] and metrics["epochs_run"] == 2
    assert 0 <= metrics["best_val_accuracy"] <= 1
    # the test part: its own images, measured once per replicate, at the epoch validation selected
    assert (params["train_samples"], params["validation_samples"], params["test_samples"]) == ("210", "90", "359")
    assert len({params["train_hash"], params["validation_hash"], params["test_hash"]}) == 3
    assert params["replicate_seeds"] == "700" and params["repeats"] == "1"
    assert metrics["test_accuracy"] == metrics["test_accuracy/replicate_0"] and 0 <= metrics["test_accuracy"] <= 1
    assert metrics["test_loss/replicate_0"] > 0 and metrics["selected_epoch"] in (1.0, 2.0)
    val = [m.value for m in client.get_metric_history(trial.info.run_id, "val_accuracy")]
    assert metrics["selected_epoch"] == val.index(max(val)) + 1 and metrics["best_val_accuracy"] == max(val)
    assert metrics["converged"] in (0.0, 1.0) and "loss_slope" in metrics
    for key in ("loss", "accuracy"):  # the last epoch's training values, per replicate
        assert metrics[f"{key}/replicate_0"] == client.get_metric_history(trial.info.run_id, key)[-1].value == metrics[key]
    tags = trial.data.tags
    from search.tracking.provenance import file_hash

    assert tags["space_hash"] == file_hash(space)
    assert tags["seed"] == "7" and tags["version.tensorflow"].startswith("2.")
    assert "git_commit" in tags and "version.keras-tuner" in tags
    # measured inference time of the trained model, and the machine it was measured on
    from search.tracking.provenance import cpu_name

    assert 0 < metrics["latency_ms"] and 0 < metrics["latency_batch_ms"]
    assert cpu_name() in tags["hardware"] and f"{os.cpu_count()} CPUs" in tags["hardware"]
    # under save_models: best, the better trial by validation (the earlier on a tie) keeps its model, the other none
    best = max(trials, key=lambda t: (t.data.metrics["best_val_accuracy"], -t.info.start_time))
    for each in trials:
        kept = ["model"] if each.info.run_id == best.info.run_id else []
        assert [a.path for a in client.list_artifacts(each.info.run_id)] == [*kept, "model_summary.txt"]
        assert (MODEL_TAG in each.data.tags) == bool(kept)
    summary = client.download_artifacts(trial.info.run_id, "model_summary.txt")
    assert "stage1_block1_1_conv" in open(summary).read()
    parent = parents[0]
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["space.yaml"]
    assert parent.data.metrics["trials_finished"] == 2
    assert parent.data.metrics["best_val_accuracy"] == max(t.data.metrics["best_val_accuracy"] for t in trials)
    assert parent.data.params["data_hash"] == trial.data.params["data_hash"]


def test_same_seed_gives_the_same_metrics(finished_search, tmp_path):
    root, space, _, _ = finished_search
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli("run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner"))
    assert result.exit_code == 0, result.output
    first = {t.data.params["residual"]: t.data.metrics for t in store_runs(finished_search[2])[2]}
    second = {t.data.params["residual"]: t.data.metrics for t in store_runs(uri)[2]}
    for residual in ("False", "True"):
        for key in ("loss", "val_loss", "val_accuracy", "params", "flops"):
            assert first[residual][key] == second[residual][key], (residual, key)


def test_bad_space_exits_2_without_traceback_or_writes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = write(tmp_path / "bad.yaml", TINY_SPACE.replace("depth: 8", "depth: 9"))
    result = run_cli("run", str(bad))
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "model.depth" in result.output and "6n+2" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "mlruns").exists()


def test_validate_and_plan(tiny_space):
    result = run_cli("validate", str(tiny_space))
    assert result.exit_code == 0 and "2 candidates [residual(2)]" in result.output
    result = run_cli("plan", str(tiny_space))
    assert result.exit_code == 0, result.output
    assert "all 2 candidates" in result.output and "8x8x1" in result.output
    assert result.output.count("False") + result.output.count("True") == 2


@pytest.mark.parametrize("strategy", ["random", "bayesian"])  # hyperband: below, with replicates
def test_other_strategies_run_tracked_trials(tmp_path, strategy):
    text = TINY_SPACE.replace("strategy: grid", f"strategy: {strategy}\n  max_trials: 2\n  hyperband_factor: 2")
    space = write(tmp_path / "s.yaml", text)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli("run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner"))
    assert result.exit_code == 0, result.output
    _, parents, trials = store_runs(uri)
    assert parents[0].info.status == "FINISHED"
    assert len(trials) >= 2 and all(t.info.status == "FINISHED" for t in trials)
    assert parents[0].data.metrics["trials_finished"] == len(trials)


def test_hyperband_replicates_each_continue_their_own_weights(tmp_path):
    """Two replicates through hyperband's one-epoch first round (a one-epoch slope is unknown, and must
    not fail the trial): each keeps and continues its own best weights."""
    text = TINY_SPACE.replace("strategy: grid", "strategy: hyperband\n  max_trials: 3\n  hyperband_factor: 2\n  repeats: 2")
    text = text.replace("residual: [false, true]", "residual: [false, true]\n  bn: none")  # half the graph to trace; accuracy is not read
    space = write(tmp_path / "s.yaml", text)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli("run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner"))
    assert result.exit_code == 0, result.output
    _, parents, trials = store_runs(uri)
    assert parents[0].info.status == "FINISHED" and parents[0].data.metrics["trials_finished"] == len(trials) == 3
    assert all(t.info.status == "FINISHED" for t in trials)
    for folder in (tmp_path / "tuner" / "tiny").glob("trial_*"):
        assert sorted(p.name for p in folder.glob("best.*.weights.h5")) == ["best.0.weights.h5", "best.1.weights.h5"]
    saved = [json.loads(p.read_text())["hyperparameters"]["values"] for p in (tmp_path / "tuner" / "tiny").glob("trial_*/trial.json")]
    assert any(values.get("tuner/trial_id") for values in saved), "a second round continued from the first"
    for trial in trials:
        one, two = trial.data.metrics["best_val_accuracy/replicate_0"], trial.data.metrics["best_val_accuracy/replicate_1"]
        assert trial.data.metrics["best_val_accuracy"] == pytest.approx((one + two) / 2)


def test_an_oversized_candidate_fails_with_its_reason_and_the_search_goes_on(tmp_path):
    text = TINY_SPACE.replace("depth: 8", "depth: [8, 14]").replace("residual: [false, true]", "residual: true")
    text = text.replace("seed: 7", "seed: 7\n  max_params: 30000")
    space = write(tmp_path / "s.yaml", text)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli("run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner"))
    assert result.exit_code == 0, result.output
    _, parents, trials = store_runs(uri)
    by_depth = {t.data.params["depth"]: t for t in trials}
    assert by_depth["8"].info.status == "FINISHED" and by_depth["8"].data.metrics["params"] <= 30000
    assert by_depth["14"].info.status == "FAILED"
    assert "Oversized model" in by_depth["14"].data.tags["failure_reason"]
    assert parents[0].data.metrics["trials_failed"] == 1 and parents[0].info.status == "FINISHED"
    assert "FAILED" in result.output


def test_a_non_finite_loss_fails_the_trial():
    from keras_tuner.errors import FailedTrialError

    from search.engine.tuner import _refuse_non_finite

    _refuse_non_finite([[{"loss": 1.0}, {"loss": 0.5}]])
    with pytest.raises(FailedTrialError, match="loss became nan at epoch 2"):
        _refuse_non_finite([[{"loss": 1.0}], [{"loss": 1.0}, {"loss": float("nan")}]])
