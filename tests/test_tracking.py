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


def test_a_new_store_is_a_copy_of_one_migrated_once_and_works_like_one_migrated_by_mlflow(tmp_path, monkeypatch):
    import sqlite3

    import mlflow

    from search.tracking.client import create_sqlite_store
    from search.tracking.store import check_store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = tmp_path / "cache" / "archsearch" / f"empty-store-mlflow-{mlflow.__version__}.db"
    direct = tmp_path / "direct.db"
    MlflowClient(f"sqlite:///{direct}").search_experiments(max_results=1)  # MLflow's own migrations

    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    create_sqlite_store(first)
    built = template.stat().st_mtime_ns
    create_sqlite_store(second)
    assert template.stat().st_mtime_ns == built, "the template is built once and then copied"
    assert check_store(first) == check_store(second) == check_store(direct)
    tables = lambda db: sorted(r[0] for r in sqlite3.connect(db).execute("select name from sqlite_master where type = 'table'"))  # noqa: E731
    assert tables(second) == tables(direct)
    uri = f"sqlite:///{second}"
    tracker = Tracker(uri, "copied")
    run = tracker.start_run("search", params={"seed": 1}, tags={})
    tracker.log_metrics(run, {"params": 10.0})
    tracker.end_run(run, "FINISHED")
    assert MlflowClient(uri).get_run(run).data.metrics["params"] == 10.0
    assert MlflowClient(f"sqlite:///{first}").search_runs([tracker.experiment_id]) == [], "stores share nothing"
    default = MlflowClient(uri).get_experiment_by_name("Default")
    assert default.artifact_location == (second.parent / "artifacts").resolve().as_uri()


def test_a_damaged_template_is_rebuilt_and_an_unwritable_cache_falls_back_to_migrating(tmp_path, monkeypatch):
    import mlflow

    from search.tracking.client import create_sqlite_store
    from search.tracking.store import check_store

    template = tmp_path / "cache" / "archsearch" / f"empty-store-mlflow-{mlflow.__version__}.db"
    template.parent.mkdir(parents=True)
    template.write_bytes(b"not a database")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    create_sqlite_store(tmp_path / "a" / "mlflow.db")
    assert check_store(template) == check_store(tmp_path / "a" / "mlflow.db")

    (tmp_path / "file").write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    create_sqlite_store(tmp_path / "b" / "mlflow.db")
    assert check_store(tmp_path / "b" / "mlflow.db") == check_store(template)
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["mlflow.db"]


def test_a_deleted_experiment_is_refused_with_a_clear_error(tmp_path):
    import pytest

    from search.errors import TrackingError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "gone")
    MlflowClient(uri).delete_experiment(tracker.experiment_id)
    with pytest.raises(TrackingError, match="was deleted"):
        Tracker(uri, "gone")
