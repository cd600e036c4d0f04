"""`archsearch ui` against a store written by the Tracker (no training): its address is printed only once the
server answers, it points at the latest search's runs table in MLflow's model-training view, and SIGTERM stops
every process of the server."""

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from search.tracking.client import Tracker
from search.tracking.locations import UI_WORKFLOW
from search.tracking.tags import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, ROLE_TAG, RUNS_VIEW_KEY, SEARCH_ROLE, TRIAL_ROLE

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two experiments with a parent run and three nested trials each; `recent`'s search started last."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    ids = {}
    for name in ("older", "recent"):
        tracker = Tracker(uri, name)
        if name == "recent":  # as a search does; `older` stands for an experiment from before the view existed
            tracker.show_columns(["depth"], ["val_accuracy"])
        parent = tracker.start_run(f"search-{name}", {"strategy": "grid"}, {ROLE_TAG: SEARCH_ROLE})
        for i in range(3):
            trial = tracker.start_run(f"trial-{i}", {"depth": 8 + 2 * i, "trial_id": str(i)}, {ROLE_TAG: TRIAL_ROLE}, parent_id=parent)
            tracker.log_metrics(trial, {"val_accuracy": 0.5 + 0.1 * i})
            tracker.end_run(trial, "FINISHED")
        tracker.end_run(parent, "FINISHED")
        ids[name] = tracker.experiment_id
        time.sleep(0.01)  # distinct start times
    return uri, ids


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ui(uri: str, port: int, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "search.cli", "ui", "--tracking-uri", uri, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs,
    )


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_tracker_tags_the_experiment_kind(store, tmp_path):
    uri, ids = store
    client = MlflowClient(uri)
    assert all(client.get_experiment(i).tags.get(EXPERIMENT_KIND_TAG) == EXPERIMENT_KIND[EXPERIMENT_KIND_TAG] for i in ids.values())
    # an experiment of an older store, without the tag, gets it when a search opens it; a kind already set stays
    client.create_experiment("untagged")
    client.create_experiment("genai", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert client.get_experiment(Tracker(uri, "untagged").experiment_id).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    assert client.get_experiment(Tracker(uri, "genai").experiment_id).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_ui_prints_the_runs_address_once_it_answers_and_sigterm_stops_it(store):
    uri, ids = store
    port = free_port()
    process = ui(uri, port)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=90)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", data=b'{"max_results": 10}',
                                         headers={"Content-Type": "application/json"})
        with DIRECT.open(request, timeout=5) as response:  # once, no retry: the line comes after the server answers
            names = {e["name"] for e in json.load(response)["experiments"]}
        assert {"older", "recent"} <= names
        address = f"http://127.0.0.1:{port}/#/experiments/{ids['recent']}/runs?{UI_WORKFLOW}&viewStateShareKey={RUNS_VIEW_KEY}"
        assert address in first.split()
        assert "Model training" in lines.get(timeout=5)  # how to make the experiments list open runs tables too
        server = descendants(process.pid)
        assert server, "the MLflow UI runs as a child process"
    finally:
        process.send_signal(signal.SIGTERM)  # to archsearch alone, as `kill` would: it stops the server's group
        rc = process.wait(timeout=30)
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in server) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in server if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "processes of the MLflow UI outlived archsearch ui"
    assert rc == 0
    assert process.stderr.read().strip().endswith("stopped the MLflow UI")


def test_ui_exits_2_when_mlflow_fails_before_answering(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_text("not a database")
    process = ui(f"sqlite:///{db}", free_port())
    out, err = process.communicate(timeout=90)
    assert process.returncode == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "exited (status 1) before it answered" in err and "file is not a database" in err


def test_ui_refuses_a_port_in_use(store):
    uri, _ = store
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = ui(uri, taken.getsockname()[1])
        out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and out == ""
    assert "is in use" in err
