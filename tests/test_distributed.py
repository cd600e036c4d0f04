"""Distributed search on loopback: a real MLflow tracking server on a real PostgreSQL, a KerasTuner chief and
two workers, one of them killed mid-trial. Every trial must end FINISHED exactly once and the chief must exit
on its own."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import postgres
import pytest
from conftest import REPO, write
from mlflow.tracking import MlflowClient

from search.errors import SearchStopped
from search.tracking.tags import PARENT_TAG

SPACE = """\
name: loopback
dataset: {name: digits, input_size: 8, subset: 300, validation_split: 0.3}
model: {family: resnet, depth: 8, width: 0.5, residual: true, bn: none}
training: {learning_rate: [0.01, 0.02, 0.04], batch_size: 32, epochs: 2}
search: {strategy: grid, seed: 5}
"""
# The grid: three trials of one small model (no batch norm: half the graph to trace; nothing here reads accuracy).
RATES = ("0.01", "0.02", "0.04")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def archsearch(*args, log=None, env=None):
    env = os.environ | {"PYTHONPATH": str(REPO), "MLFLOW_LOGGING_LEVEL": "WARNING"} | (env or {})
    return subprocess.Popen([sys.executable, "-m", "search.cli", *map(str, args)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def server_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def every_trial_finished_once(client) -> list:
    """Check that the loopback search finished with each of its trials FINISHED exactly once and no run left
    RUNNING; return the FINISHED trial runs."""
    experiment = client.get_experiment_by_name("loopback")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if PARENT_TAG not in r.data.tags]
    finished = [r for r in runs if PARENT_TAG in r.data.tags and r.info.status == "FINISHED"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_finished"] == len(RATES)
    assert sorted(r.data.params["trial_id"] for r in finished) == [str(i) for i in range(len(RATES))]  # each exactly once
    assert not [r for r in runs if r.info.status == "RUNNING"]
    return finished


@pytest.fixture
def processes():
    """Processes a test starts, stopped at its end: SIGTERM first, which `archsearch server` passes on to
    the MLflow server it runs in a process group of its own; SIGKILL for what is left after 20 s."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.skipif(postgres.binaries() is None, reason="needs Debian's postgresql package (README: Distributed search)")
def test_a_team_on_postgresql_finishes_every_trial_once_though_one_worker_dies(tmp_path, processes):
    """The README's team set-up: a PostgreSQL database, `archsearch server` on its plain postgresql:// URI, a
    chief and two workers (one killed mid-trial, then the database stopped until the search says it waits),
    then `compare` and `report` through the server."""
    db_port, password = free_port(), "s3cret-pw"
    with postgres.cluster(db_port) as database:
        database.psql(f"CREATE USER archsearch PASSWORD '{password}'", "CREATE DATABASE archsearch OWNER archsearch")
        _team_search(tmp_path, processes, f"postgresql://archsearch:{password}@127.0.0.1:{db_port}/archsearch", password, database)


def _team_search(tmp_path, processes, store_uri: str, password: str, database: postgres.Cluster) -> None:
    space = write(tmp_path / "space.yaml", SPACE)
    url = f"http://127.0.0.1:{free_port()}"
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("server", "chief", "w1", "w2")}  # noqa: SIM115
    server = archsearch("server", "--backend-store-uri", store_uri, "--artifacts", tmp_path / "artifacts",
                        "--port", url.rsplit(":", 1)[1], log=logs["server"])
    processes.append(server)
    wait_until(lambda: "MLflow tracking server on" in (tmp_path / "server.log").read_text(), 120, "the server's banner")
    assert server_up(url)  # the banner comes once it answers
    mlflow_processes = subprocess.run(["pgrep", "-a", "-f", "mlflow server"], capture_output=True, text=True).stdout
    assert "mlflow server" in mlflow_processes and password not in mlflow_processes  # nor in `ps`
    chief_port = free_port()
    chief = archsearch("chief", space, "--port", chief_port, "--tracking-uri", url, "--heartbeat-timeout", 15,
                       "--tuner-dir", tmp_path / "chief", log=logs["chief"])
    processes.append(chief)
    workers = {
        name: archsearch("worker", space, "--chief", f"127.0.0.1:{chief_port}", "--id", name, "--tracking-uri", url,
                         "--tuner-dir", tmp_path / name, "--threads", 1, log=logs[name])
        for name in ("w1", "w2")
    }
    processes.extend(workers.values())
    client = MlflowClient(url)

    def running_trial_of_w1():
        experiment = client.get_experiment_by_name("loopback")
        if experiment is None:
            return None
        runs = client.search_runs([experiment.experiment_id], "tags.`archsearch.worker` = 'w1' and attributes.status = 'RUNNING'")
        # once its params are logged: the run is made first and its params sent next, and this kill is for a trial
        # under way, not for the moment between those two requests
        return next((run for run in runs if "trial_id" in run.data.params), None)

    killed_run = wait_until(running_trial_of_w1, 120, "worker w1 to start a trial")
    os.killpg(workers["w1"].pid, signal.SIGKILL)  # the worker and its trial process, mid-trial
    database.stop()  # an outage of the database: the server answers 503 until it is back
    wait_until(lambda: any("waiting for the tracking server" in (tmp_path / f"{name}.log").read_text() for name in ("chief", "w2")),
               180, "a note that the search waits for the tracking server")
    database.start()
    assert chief.wait(timeout=240) == 0, (tmp_path / "chief.log").read_text()
    assert workers["w2"].wait(timeout=60) == 0, (tmp_path / "w2.log").read_text()

    finished = every_trial_finished_once(client)
    lost = client.get_run(killed_run.info.run_id)
    assert lost.info.status == "KILLED" and "worker was lost" in lost.data.tags["failure_reason"]
    assert any(r.data.params["trial_id"] == lost.data.params["trial_id"] and r.data.tags["archsearch.worker"] == "w2" for r in finished)
    assert {r.data.params["learning_rate"] for r in finished} == set(RATES)
    assert f"worker w1 was lost (silent for 15 s); its trial {lost.data.params['trial_id']} goes to the next worker" in (
        tmp_path / "chief.log").read_text().replace("\n", " ")
    experiment_id = client.get_experiment_by_name("loopback").experiment_id
    assert not [r for r in client.search_runs([experiment_id]) if r.info.status == "FAILED"], "an outage is no failed trial"

    table = subprocess.run([sys.executable, "-m", "search.cli", "compare", "loopback", "--tracking-uri", url, "--format", "json"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert sorted(str(row["learning_rate"]) for row in json.loads(table.stdout)["groups"]) == sorted(RATES), table.stdout
    report = subprocess.run([sys.executable, "-m", "search.cli", "report", "loopback", "--tracking-uri", url, "--out", tmp_path / "report"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert report.returncode == 0, report.stderr
    assert "| 0.04 |" in (tmp_path / "report" / "index.md").read_text().replace("0.040", "0.04")
    os.killpg(server.pid, signal.SIGTERM)  # as `kill` or Ctrl-C stops it: MLflow's processes go with it
    assert server.wait(timeout=30) == 0
    assert f"--port {url.rsplit(':', 1)[1]}" not in subprocess.run(["pgrep", "-a", "-f", "mlflow"], capture_output=True, text=True).stdout
    server_log = (tmp_path / "server.log").read_text()
    assert "archsearch:***@127.0.0.1" in server_log and password not in server_log


def test_a_killed_search_with_a_local_worker_continues_when_run_again(tmp_path, processes):
    """`run --workers 1` killed at once with its worker and trial, then the same command again: the chief reloads
    KerasTuner's state, hands the interrupted trial out again, and every trial ends FINISHED once. (One worker
    keeps the test short; the loopback test above covers several.)"""
    space = write(tmp_path / "space.yaml", SPACE)
    store = tmp_path / "store" / "mlflow.db"
    uri = f"sqlite:///{store}"
    command = ("run", space, "--workers", 1, "--tracking-uri", uri, "--tuner-dir", tmp_path / "tuner")
    with open(tmp_path / "first.log", "w") as log:
        first = archsearch(*command, log=log)
    processes.append(first)

    def trials_with_status():
        if not store.exists():  # made by the search; a client made before would build the store itself
            return {}
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("loopback")
        runs = client.search_runs([experiment.experiment_id], "tags.`archsearch.role` = 'trial'") if experiment else []
        return {r.info.run_id: r.info.status for r in runs if "trial_id" in r.data.params}  # a trial's run once it is whole

    def one_finished_and_one_running():
        statuses = trials_with_status()
        return statuses if {"FINISHED", "RUNNING"} <= set(statuses.values()) else None

    interrupted = wait_until(one_finished_and_one_running, 180, "a finished trial while another one runs")
    os.killpg(first.pid, signal.SIGKILL)  # chief, worker and trial process: nothing gets to clean up
    first.wait()
    with open(tmp_path / "second.log", "w") as log:
        second = archsearch(*command, log=log)
    processes.append(second)
    assert second.wait(timeout=240) == 0, (tmp_path / "second.log").read_text()

    client = MlflowClient(uri)
    finished = every_trial_finished_once(client)
    was_running = [client.get_run(run_id) for run_id, status in interrupted.items() if status == "RUNNING"]
    assert was_running and all(r.info.status == "KILLED" for r in was_running)
    assert {r.data.params["trial_id"] for r in was_running} <= {r.data.params["trial_id"] for r in finished}
    kept = {run_id for run_id, status in interrupted.items() if status == "FINISHED"}
    assert kept <= {r.info.run_id for r in finished}  # finished before the kill: kept, not run again


MIRRORED_CHECK = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras_tuner as kt
from search.data import load_data
from search.engine.hypermodel import SpaceHyperModel, declare
from search.spec.schema import Space
space = Space.model_validate({"name": "m", "dataset": {"name": "digits", "input_size": 8, "subset": 128},
    "model": {"family": "resnet", "depth": 8, "width": 0.5}, "training": {"batch_size": 32, "epochs": 1, "distribute": "mirrored"}})
hypermodel = SpaceHyperModel(space, load_data(space.dataset), devices=["/cpu:0", "/cpu:1"])
hp = kt.HyperParameters()
declare(hp, space)
model = hypermodel.build(hp)
history = hypermodel.fit(hp, model, seed=1, epochs=1)
print("replicas", hypermodel.replicas, type(model.trainable_variables[0].value).__name__, len(history.history["loss"]))
"""


def test_mirrored_strategy_trains_one_trial_on_two_replicas():
    """Per-trial data parallelism, wired on two logical CPU devices (on a GPU machine: one per GPU)."""
    env = os.environ | {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", MIRRORED_CHECK], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas 2 MirroredVariable 1" in done.stdout, done.stdout


def _declared(oracle, folder):
    """`oracle` over one axis, x in 0..99, keeping its state in `folder`."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.Choice("x", list(range(100)))
    oracle.update_space(hp)
    oracle._set_project_dir(str(folder), "chief")
    return oracle


def _chief_and_clients(tmp_path, monkeypatch, max_trials: int, failures: int = 3, heartbeat_timeout: float = 15, oracle=None):
    """A chief serving a real oracle (KerasTuner's random search unless given) on loopback, and two
    KerasTuner worker clients (no training)."""
    import keras_tuner as kt
    from keras_tuner.src.distribute.oracle_client import OracleClient

    from search.distributed.chief import Chief
    from search.distributed.worker import identify_worker
    from search.engine.compat import RandomSearchOracle

    oracle = oracle or RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=max_trials, seed=1,
                                          max_consecutive_failed_trials=failures)
    _declared(oracle, tmp_path)
    chief = Chief(oracle, "127.0.0.1:0", heartbeat_timeout=heartbeat_timeout)
    chief.start()
    clients = {}
    for name in ("a", "b"):
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(chief.port))
        monkeypatch.setenv("KERASTUNER_TUNER_ID", name)
        clients[name] = OracleClient(oracle)
        identify_worker(clients[name], name, f"127.0.0.1:{chief.port}")
    return oracle, chief, clients


def _finish(client, trial, score=1.0, status="COMPLETED"):
    if status == "COMPLETED":
        client.update_trial(trial.trial_id, {"score": score})
    trial.status = status
    client.end_trial(trial)


def test_a_lost_workers_trial_goes_to_the_next_worker_and_its_late_result_is_ignored(tmp_path, monkeypatch):
    oracle, chief, clients = _chief_and_clients(tmp_path, monkeypatch, max_trials=2)
    try:
        first = clients["a"].create_trial("a")
        second = clients["b"].create_trial("b")
        assert chief.reclaim("a") == first.trial_id
        _finish(clients["b"], second)
        again = clients["b"].create_trial("b")
        assert again.trial_id == first.trial_id and again.status == "RUNNING"  # handed out again
        _finish(clients["a"], first, score=0.1)  # the lost worker comes back too late: not counted
        assert oracle.trials[first.trial_id].status == "RUNNING"
        _finish(clients["b"], again, score=0.7)
        assert oracle.end_order.count(first.trial_id) == 1 and oracle.trials[first.trial_id].score == 0.7
        assert clients["b"].create_trial("b").status == "STOPPED"
        assert clients["a"].create_trial("a").status == "STOPPED"
        assert chief.done()
    finally:
        chief.server.stop(0)


def test_workers_wait_while_others_still_train_and_all_are_stopped_at_the_end(tmp_path, monkeypatch):
    oracle, chief, clients = _chief_and_clients(tmp_path, monkeypatch, max_trials=2)
    try:
        first = clients["a"].create_trial("a")
        second = clients["b"].create_trial("b")
        _finish(clients["b"], second)
        assert clients["b"].create_trial("b").status == "IDLE"  # a's trial may yet need a worker
        assert not chief.done()
        _finish(clients["a"], first)
        assert clients["b"].create_trial("b").status == "STOPPED"
        assert not chief.done()  # a has not been told yet; it would hang on a server that is gone
        assert clients["a"].create_trial("a").status == "STOPPED"
        assert chief.done()
    finally:
        chief.server.stop(0)


def test_too_many_failed_trials_stop_the_chief_with_the_reason(tmp_path, monkeypatch):
    """Worker a is never told to stop, so the chief serves until a has been silent for the heartbeat timeout
    (short here: it is what serve waits out) and then stops with the oracle's reason."""
    oracle, chief, clients = _chief_and_clients(tmp_path, monkeypatch, max_trials=5, failures=1, heartbeat_timeout=2)
    try:
        trial = clients["a"].create_trial("a")
        _finish(clients["a"], trial, status="FAILED")
        assert oracle.stopped and "consecutive failures exceeded" in oracle.stopped
        assert clients["b"].create_trial("b").status == "STOPPED"  # the oracle's lock is free, the search stops
        with pytest.raises(SearchStopped, match="consecutive"):
            chief.serve(poll=0.05)
    finally:
        chief.server.stop(0)


def test_a_full_disk_on_the_chief_stops_the_search_and_leaves_the_oracle_lock_free(tmp_path, monkeypatch):
    """A state write that fails inside KerasTuner's oracle lock (a full disk) must not leave the lock held:
    every worker's next request would hang. The chief stops the search with the error instead."""
    import errno
    import os
    import threading

    from search import files
    from search.errors import StateError

    oracle, chief, clients = _chief_and_clients(tmp_path, monkeypatch, max_trials=5)
    try:
        trial = clients["a"].create_trial("a")

        def full_disk(descriptor, payload):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(files, "_write_all", full_disk)
        _finish(clients["a"], trial)
        assert isinstance(oracle.broken, StateError) and "No space left on device" in oracle.broken.message()
        answer = {}
        asking = threading.Thread(target=lambda: answer.update(status=clients["b"].create_trial("b").status), daemon=True)
        asking.start()
        asking.join(timeout=60)
        assert answer.get("status") == "STOPPED", "the next request must be answered, not wait on a held lock"
        with pytest.raises(StateError, match="No space left on device"):
            chief.serve(poll=0.05)
    finally:
        chief.server.stop(0)


def _accuracy_and_size(x: int) -> dict:
    """A made-up result in which accuracy and size conflict, so the front has several members."""
    return {"score": x / 100, "params": float((x * 37) % 100) + x / 10}


def test_nsga2_served_by_the_chief_ranks_by_the_costs_its_workers_send(tmp_path, monkeypatch):
    """NSGA-II runs where KerasTuner's oracles run: served to two workers, with the costs crossing the wire
    beside the score, it proposes exactly what the same oracle proposes in process given the same results."""
    import keras_tuner as kt

    from search.engine.nsga2 import NSGA2Oracle

    def nsga2():
        return NSGA2Oracle(objective=kt.Objective("score", "max"), costs=["params"], population_size=4, max_trials=12, seed=3)

    served, chief, clients = _chief_and_clients(tmp_path / "served", monkeypatch, max_trials=12, oracle=nsga2())
    twin = _declared(nsga2(), tmp_path / "twin")
    try:
        for number in range(12):
            name = "ab"[number % 2]
            trial, expected = clients[name].create_trial(name), twin.create_trial("twin")
            assert trial.hyperparameters.values == expected.hyperparameters.values, f"trial {number}"
            result = _accuracy_and_size(trial.hyperparameters.values["x"])
            clients[name].update_trial(trial.trial_id, result)
            trial.status = "COMPLETED"
            clients[name].end_trial(trial)
            twin.update_trial(expected.trial_id, result)
            expected.status = "COMPLETED"
            twin.end_trial(expected)
        for trial in served.trials.values():
            sent = _accuracy_and_size(trial.hyperparameters.values["x"])
            assert served.objective_vector(trial).tolist() == pytest.approx([-sent["score"], sent["params"]])
        assert len({t.hyperparameters.values["x"] for t in served.trials.values()}) == 12  # children, no repeats
    finally:
        chief.server.stop(0)


def test_a_prescreen_served_by_the_chief_hands_each_worker_the_best_scoring_draw(tmp_path, monkeypatch):
    import keras_tuner as kt

    from search.engine.prescreen import PrescreenedRandomOracle

    scored: list[tuple[int, float]] = []

    def scorer(hp) -> float:  # a made-up proxy, scored where the oracle runs: in the chief
        scored.append((hp.values["x"], float((hp.values["x"] * 37) % 100)))
        return scored[-1][1]

    oracle = PrescreenedRandomOracle(objective=kt.Objective("score", "max"), max_trials=8, seed=1, scorer=scorer, sampled=4)
    _, chief, clients = _chief_and_clients(tmp_path, monkeypatch, max_trials=8, oracle=oracle)
    try:
        for number in range(8):
            name = "ab"[number % 2]
            before = len(scored)
            trial = clients[name].create_trial(name)
            drawn = scored[before:]
            assert len(drawn) >= 2, "several draws scored for each trial"
            assert trial.hyperparameters.values["x"] == max(drawn, key=lambda pair: pair[1])[0]
            _finish(clients[name], trial)
    finally:
        chief.server.stop(0)


def _search_with_workers(tmp_path, processes, search: str, workers: int, *options) -> tuple[MlflowClient, list, object]:
    """The tiny space under `search`, run with `workers` local workers (0: in process) and `options` to its
    end: the store's client, the trial runs and the parent run."""
    import yaml
    from conftest import TINY_SPACE

    space = yaml.safe_load(TINY_SPACE)
    space["model"] |= {"width": [0.25, 0.5, 1.0]}
    space["training"]["epochs"] = 1
    space["search"] = yaml.safe_load(search)
    path = write(tmp_path / "space.yaml", yaml.safe_dump(space))
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    with open(tmp_path / "run.log", "w") as log:
        search_process = archsearch("run", path, "--workers", workers, "--tracking-uri", uri, "--tuner-dir", tmp_path / "tuner", *options, log=log)
    processes.append(search_process)
    assert search_process.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()[-3000:]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    (parent,) = [r for r in runs if PARENT_TAG not in r.data.tags]
    trials = [r for r in runs if PARENT_TAG in r.data.tags]
    assert all(t.info.status == "FINISHED" for t in trials)
    assert sorted(t.data.params["trial_id"] for t in trials) == [str(i) for i in range(len(trials))]  # each once
    return client, trials, parent


def test_nsga2_with_two_workers_logs_its_front_and_each_step_of_the_hypervolume_once(tmp_path, processes):
    """Workers report the costs to the chief's NSGA-II; the chief alone logs the front as trials end, so the
    hypervolume curve has each step once, and its last value is the front of every trial the store holds."""
    import json

    import numpy as np

    from search.engine.front import reference_point
    from search.reporting.pareto import fronts, hypervolume

    client, trials, parent = _search_with_workers(
        tmp_path, processes, "{strategy: nsga2, objectives: [val_accuracy, params], population_size: 2, max_trials: 4, seed: 3}", workers=2)
    assert len(trials) == 4 and {t.data.tags["archsearch.worker"] for t in trials} <= {"worker-1", "worker-2"}
    logged = {t.data.params["trial_id"]: t.data.metrics["params"] for t in trials}
    for path in (tmp_path / "tuner" / "tiny").glob("trial_*/trial.json"):  # the chief's oracle state
        trial = json.loads(path.read_text())
        assert trial["metrics"]["metrics"]["params"]["observations"][0]["value"][0] == logged[trial["trial_id"]]
    by_end = sorted(trials, key=lambda t: t.info.end_time)
    placed = np.array([[-t.data.metrics["best_val_accuracy"], t.data.metrics["params"]] for t in by_end])
    on_front = set(fronts(placed)[0].tolist())
    assert [t.data.metrics["on_front"] for t in by_end] == [float(i in on_front) for i in range(4)]
    history = client.get_metric_history(parent.info.run_id, "hypervolume")
    assert sorted(m.step for m in history) == [1, 2, 3, 4], "each step once"
    reference = reference_point(placed[:2])
    assert max(history, key=lambda m: m.step).value == pytest.approx(hypervolume(placed, reference))


def test_a_prescreened_search_with_a_worker_is_scored_in_the_chief_and_logs_the_same_score(tmp_path, processes):
    """The chief scores the candidates (building untrained nets in its request threads); the worker's trial
    logs the score of the net it trained, computed again the same way."""
    import keras_tuner as kt

    from search.data import load_data
    from search.engine.hypermodel import declare
    from search.engine.oracles import make_oracle
    from search.engine.prescreen import ProxyScorer
    from search.spec.reader import load_space

    _, trials, _ = _search_with_workers(
        tmp_path, processes, "{strategy: random, max_trials: 2, seed: 7, prescreen: {proxy: synflow, keep: 0.5}}", workers=1)
    assert len(trials) == 2
    space = load_space(tmp_path / "space.yaml")
    scorer = ProxyScorer(space, load_data(space.dataset))
    # the chief's choices, made again in process: the same oracle, seed and scores choose the same nets
    oracle = make_oracle(space, scorer)
    hp = kt.HyperParameters()
    declare(hp, space)
    oracle.update_space(hp)
    oracle._set_project_dir(str(tmp_path / "again"), "again")
    for trial in sorted(trials, key=lambda t: int(t.data.params["trial_id"])):
        chosen = oracle.create_trial("again")
        values = {"width": float(trial.data.params["width"]), "residual": trial.data.params["residual"] == "True"}
        assert {k: chosen.hyperparameters.values[k] for k in values} == values
        chosen.status = "COMPLETED"
        oracle.update_trial(chosen.trial_id, {"val_accuracy": trial.data.metrics["best_val_accuracy"]})
        oracle.end_trial(chosen)
        assert trial.data.params["prescreen"] == "synflow/0.5"
        assert trial.data.metrics["proxy_score"] == pytest.approx(scorer(chosen.hyperparameters), rel=1e-5)


def test_a_grid_trains_on_both_workers_at_once_and_gives_the_numbers_one_process_gives_with_the_same_threads(tmp_path, processes):
    """KerasTuner's grid handed a second worker nothing until a trial ended; and a trial's results depend on
    its CPU threads (2 in process, 1 per worker by default here), so --threads 1 on both sides."""
    grid = "{strategy: grid, seed: 3, max_trials: 4}"
    _, alone, _ = _search_with_workers(tmp_path / "in-process", processes, grid, 0, "--threads", 1)
    _, shared, _ = _search_with_workers(tmp_path / "workers", processes, grid, 2, "--threads", 1)

    def results(trials):
        return {(t.data.params["width"], t.data.params["residual"]): (t.data.metrics["best_val_accuracy"], t.data.metrics["test_accuracy"])
                for t in trials}

    assert len(results(alone)) == 4 and results(shared) == results(alone)
    assert len({t.data.tags["archsearch.worker"] for t in shared}) == 2
    # KerasTuner's grid makes trial 3 only once trial 2 has ended; here a free worker takes it at once
    spans = {int(t.data.params["trial_id"]): (t.info.start_time, t.info.end_time) for t in shared}
    assert spans[3][0] < spans[2][1], "trials 2 and 3 trained at once"
