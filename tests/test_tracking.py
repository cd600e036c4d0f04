"""The tracker against a real sqlite MLflow store, read back with MlflowClient."""

from mlflow.tracking import MlflowClient

from search.tracking.client import Tracker
from search.tracking.locations import default_tracking_uri, resolve_tracking_uri
from search.tracking.tags import PARENT_TAG


def test_parent_and_nested_runs_round_trip(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    tracker = Tracker(uri, "exp")
    parent = tracker.start_run("search", params={"seed": 3}, tags={"space_hash": "abc"})
    child = tracker.start_run("trial-0", params={"depth": 20, "residual": True}, tags={}, parent_id=parent)
    tracker.log_curves(child, [{"loss": 2.0, "val_accuracy": 0.5}, {"loss": 1.0, "val_accuracy": float("nan")}])
    tracker.log_metrics(child, {"params": 1234, "flops": 10.0})
    tracker.log_text(child, "summary", "model_summary.txt")
    tracker.end_run(child, "FAILED", reason="ValueError: boom")
    tracker.end_run(parent, "FINISHED")

    client = MlflowClient(uri)
    run = client.get_run(child)
    assert run.info.status == "FAILED"
    assert run.data.tags[PARENT_TAG] == parent
    assert run.data.tags["failure_reason"] == "ValueError: boom"
    assert run.data.params == {"depth": "20", "residual": "True"}
    assert [(m.step, m.value) for m in client.get_metric_history(child, "loss")] == [(1, 2.0), (2, 1.0)]
    assert len(client.get_metric_history(child, "val_accuracy")) == 1  # NaN is not logged
    assert run.data.metrics["params"] == 1234
    assert [a.path for a in client.list_artifacts(child)] == ["model_summary.txt"]
    assert (tmp_path / "store" / "artifacts").is_dir()  # artifacts live beside the database
    frame = tracker.runs(parent)
    assert frame["run_id"].tolist() == [child]
    assert frame.loc[0, "params.depth"] == "20"


def test_reopening_an_experiment_reuses_it(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert Tracker(uri, "exp").experiment_id == Tracker(uri, "exp").experiment_id


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == default_tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri() == "http://127.0.0.1:5999"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_a_new_sqlite_store_appears_complete_or_not_at_all(tmp_path):
    from search.tracking.client import create_sqlite_store

    db = tmp_path / "new" / "mlflow.db"
    create_sqlite_store(db)
    assert db.is_file() and [p.name for p in db.parent.iterdir()] == ["mlflow.db"], "no temporary left behind"
    before = db.stat().st_mtime_ns
    create_sqlite_store(db)  # an existing store is left as it is
    assert db.stat().st_mtime_ns == before
    assert MlflowClient(f"sqlite:///{db}").get_experiment_by_name("Default") is not None


def test_a_deleted_experiment_is_refused_with_a_clear_error(tmp_path):
    import pytest

    from search.errors import TrackingError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "gone")
    MlflowClient(uri).delete_experiment(tracker.experiment_id)
    with pytest.raises(TrackingError, match="was deleted"):
        Tracker(uri, "gone")
