"""Store faults: a damaged MLflow database is refused with one line naming it and is left as it was; read-only
commands never create a store; a tracking server that stops answering is waited for, said on the display,
and given up on after --tracking-timeout with the search's state kept for a resume."""

import http.server
import json
import os
import shutil
import threading
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.tracking.client import Tracker, create_sqlite_store
from search.tracking.tags import PARENT_TAG, ROLE_TAG, SEARCH_ROLE, TRIAL_ROLE

runner = CliRunner()


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory) -> bytes:
    """The bytes of a real store holding one search with two trials."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    tracker = Tracker(f"sqlite:///{db}", "tiny")
    parent = tracker.start_run("tiny", params={}, tags={ROLE_TAG: SEARCH_ROLE})
    for depth in (8, 14):
        child = tracker.start_run(f"depth {depth}", params={"depth": depth}, tags={ROLE_TAG: TRIAL_ROLE}, parent_id=parent)
        tracker.log_metrics(child, {"best_val_accuracy": depth / 20})
        tracker.end_run(child, "FINISHED")
    return db.read_bytes()


def damaged_stores(sound: bytes) -> dict[str, bytes]:
    return {
        "empty": b"",
        "garbage": os.urandom(50_000),
        "text": b"this is not a database\n" * 100,
        "header only": sound[:100],
        "truncated": sound[: len(sound) // 2],
        "pages scrambled": sound[:4096] + bytes(b ^ 0x5A for b in sound[4096:]),
    }


@pytest.mark.parametrize("kind", ["empty", "garbage", "text", "header only", "truncated", "pages scrambled"])
def test_compare_refuses_a_damaged_store_in_one_line_and_leaves_it_as_it_was(tmp_path, sound_store, kind):
    db = tmp_path / "mlflow.db"
    db.write_bytes(damaged_stores(sound_store)[kind])
    before = db.read_bytes()
    result = runner.invoke(app, ["compare", "tiny", "--tracking-uri", f"sqlite:///{db}"])
    assert result.exit_code == 2, result.output
    assert f"cannot read the MLflow store {db}" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert db.read_bytes() == before, "a read-only command changed the store"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_the_sound_store_is_read(tmp_path, sound_store):
    """The same check passes the store the damaged ones were made from (so the refusals above are about damage)."""
    db = tmp_path / "mlflow.db"
    db.write_bytes(sound_store)
    result = runner.invoke(app, ["compare", "tiny", "--tracking-uri", f"sqlite:///{db}", "--rows", "depth", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "depth" in result.output.splitlines()[0] and len(result.output.strip().splitlines()) == 3


def test_read_only_commands_never_create_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for command in (["compare", "tiny"], ["report", "tiny", "--out", str(tmp_path / "report")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "no MLflow store at" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == [], "nothing may be created by a command that only reads"


@pytest.mark.parametrize("kind", ["empty", "garbage", "truncated"])
def test_a_search_refuses_a_damaged_store_and_writes_nothing_over_it(tmp_path, sound_store, kind):
    db = tmp_path / "mlflow.db"
    db.write_bytes(damaged_stores(sound_store)[kind])
    before = db.read_bytes()
    space = write(tmp_path / "tiny.yaml", TINY_SPACE)
    result = runner.invoke(app, ["run", str(space), "--tracking-uri", f"sqlite:///{db}", "--tuner-dir", str(tmp_path / "tuner")])
    assert result.exit_code == 2, result.output
    assert f"cannot read the MLflow store {db}" in result.output and "Traceback" not in result.output
    assert db.read_bytes() == before


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_server_that_never_answers_is_given_up_on_after_the_timeout(tmp_path):
    space = write(tmp_path / "tiny.yaml", TINY_SPACE)
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = runner.invoke(app, ["run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner"),
                                 "--tracking-timeout", "3"])
    assert result.exit_code == 2, result.output
    assert f"waiting for the tracking server at {uri}" in result.output
    assert f"the tracking server at {uri} did not answer for 3 s (--tracking-timeout)" in result.output
    assert "Traceback" not in result.output
    assert time.monotonic() - started >= 3


class _Unavailable(http.server.BaseHTTPRequestHandler):
    """An MLflow server whose database is down, as MLflow answers then: 503 TEMPORARILY_UNAVAILABLE."""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "(psycopg.OperationalError) connection refused"}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture
def unavailable_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("command", ["compare", "report", "export"])
def test_a_read_command_says_in_seconds_that_the_server_does_not_answer(tmp_path, command, unavailable_server):
    for uri, said in ((f"http://127.0.0.1:{free_port()}", "does not answer"),  # nothing listens there
                      (unavailable_server, "answers, but not from its store (HTTP 503): is its database up?")):
        started = time.monotonic()
        result = runner.invoke(app, [command, "tiny", "--tracking-uri", uri])
        assert result.exit_code == 2, result.output
        assert f"the tracking server at {uri} {said}" in result.output and len(result.output.strip().splitlines()) == 1
        assert time.monotonic() - started < 15


def test_a_search_waits_for_a_server_whose_database_is_down_and_gives_up_after_the_timeout(tmp_path, unavailable_server):
    """MLflow answers 503 while its database is down: waited for, as a server that does not answer is, not
    counted as a failed request (or a failed trial)."""
    space = write(tmp_path / "tiny.yaml", TINY_SPACE)
    result = runner.invoke(app, ["run", str(space), "--tracking-uri", unavailable_server, "--tuner-dir", str(tmp_path / "tuner"),
                                 "--tracking-timeout", "3"])
    assert result.exit_code == 2, result.output
    assert f"waiting for the tracking server at {unavailable_server} (0 s;" in result.output
    assert f"the tracking server at {unavailable_server} did not answer for 3 s (--tracking-timeout)" in result.output


def test_only_a_server_that_does_not_answer_is_waited_for():
    from mlflow.exceptions import RestException

    from search.tracking.client import unanswered

    assert unanswered(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "database down"}))  # what a 503 becomes
    assert not unanswered(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad key"}))
    assert not unanswered(ValueError("not a tracking error"))


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """A new MLflow store, built once: a server started on a copy skips MLflow's table migrations."""
    db = tmp_path_factory.mktemp("empty") / "mlflow.db"
    create_sqlite_store(db)
    return db


class Server:
    """An MLflow tracking server on a loopback port (one worker, as `archsearch server` runs it otherwise),
    over a sqlite store that outlives it."""

    def __init__(self, folder: Path, store: Path):
        self.folder, self.port, self.process = folder, free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"
        shutil.copy(store, folder / "mlflow.db")

    def start(self):
        command = [sys.executable, "-m", "mlflow", "server", "--port", str(self.port), "--host", "127.0.0.1", "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}", "--artifacts-destination", str(self.folder / "artifacts")]
        log = open(self.folder / "server.log", "a")  # noqa: SIM115 - the server's for its life
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True,
                                        env=os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
        # Polled without MLflow's client, which retries a refused connection with growing pauses (up to minutes)
        deadline = time.monotonic() + 90
        while not self.healthy():
            assert time.monotonic() < deadline and self.process.poll() is None, (self.folder / "server.log").read_text()
            time.sleep(0.2)
        MlflowClient(self.uri).search_experiments(max_results=1)  # its store opened before a search's first request

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def signal(self, number: int):
        os.killpg(self.process.pid, number)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def wait_for(condition, what: str, seconds: float = 240):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_a_search_waits_for_a_frozen_server_continues_when_it_answers_and_gives_up_after_the_timeout(tmp_path, empty_store):
    """Mid-search, with the server frozen (SIGSTOP: its requests time out) at chosen moments: once thawed while
    the search waits (it continues), then left frozen (exit 2 after --tracking-timeout, state kept). The same
    command (here in-process) then ends the search: every trial FINISHED once, nothing left RUNNING."""
    impatient = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "2", "COLUMNS": "200"}  # the search's
    server = Server(tmp_path, empty_store)
    server.start()
    # Three trials of one small model (no batch norm: half the graph to trace; nothing here reads accuracy);
    # the third is the one the second freeze catches.
    three = (TINY_SPACE.replace("residual: [false, true]", "residual: true\n  bn: none")
             .replace("learning_rate: 0.05", "learning_rate: [0.01, 0.02, 0.05]").replace("epochs: 2", "epochs: 1"))
    space = write(tmp_path / "three.yaml", three)
    client = MlflowClient(server.uri)

    def trials(status):
        experiment = client.get_experiment_by_name("tiny")
        found = client.search_runs([experiment.experiment_id]) if experiment else []
        return [r for r in found if PARENT_TAG in r.data.tags and r.info.status == status]

    command = ["run", str(space), "--tracking-uri", server.uri, "--tuner-dir", str(tmp_path / "tuner"), "--tracking-timeout", "6"]
    log = tmp_path / "search.log"
    with open(log, "w") as out:
        first = subprocess.Popen([sys.executable, "-m", "search.cli", *command], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                 env=os.environ | impatient)

    def since(offset: int) -> str:
        """What the search wrote from `offset` on: a note must come after the freeze that causes it."""
        return log.read_text()[offset:]

    try:
        wait_for(lambda: len(trials("FINISHED")) >= 1 or first.poll() is not None, "the first finished trial")
        frozen_at = len(log.read_text())
        server.signal(signal.SIGSTOP)
        wait_for(lambda: "waiting for the tracking server" in since(frozen_at) or first.poll() is not None, "the waiting note")
        server.signal(signal.SIGCONT)
        wait_for(lambda: "answers again" in since(frozen_at) or first.poll() is not None, "the search to go on")
        assert first.poll() is None, log.read_text()
        wait_for(lambda: len(trials("FINISHED")) >= 2 or first.poll() is not None, "the second finished trial")
        server.signal(signal.SIGSTOP)
        assert first.wait(timeout=300) == 2, log.read_text()
        server.signal(signal.SIGCONT)
        text = log.read_text()
        assert f"the tracking server at {server.uri} did not answer for 6 s (--tracking-timeout)" in text
        assert "Traceback" not in text
        assert len(trials("FINISHED")) < 3, "the search stopped at the timeout, not going on with unlogged trials"

        again = runner.invoke(app, command)
        assert again.exit_code == 0, again.output
        ids = [r.data.params["trial_id"] for r in trials("FINISHED")]
        assert sorted(ids) == sorted(set(ids)) and len(ids) == 3, "every trial FINISHED once"
        assert trials("RUNNING") == [], "what the timeout left RUNNING is ended on resume"
    finally:
        if first.poll() is None:
            first.kill()
        server.signal(signal.SIGCONT)
        server.stop()
