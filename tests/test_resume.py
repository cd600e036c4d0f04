"""Crash-safe searches: kill -9 at random moments and resume, refusals of changed spaces, --fresh,
reruns of finished searches, and a search stopped by consecutive failures."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.engine.hypermodel import declare
from search.engine.oracles import make_oracle
from search.spec.reader import load_space
from search.tracking.tags import PARENT_TAG

FOUR = TINY_SPACE.replace("depth: 8", "depth: [8, 14]")  # 4 candidates: depth x residual
runner = CliRunner()


def runs(uri, experiment="tiny"):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    everything = client.search_runs([found.experiment_id]) if found else []
    return [r for r in everything if PARENT_TAG not in r.data.tags], [r for r in everything if PARENT_TAG in r.data.tags]


def by_candidate(trials):
    finished = [t for t in trials if t.info.status == "FINISHED"]
    return {(t.data.params["depth"], t.data.params["residual"]): t.data.metrics for t in finished}


def cli(space, uri, tuner, *extra):
    return runner.invoke(app, ["run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tuner), *extra])


def start(space, uri, tuner, log):
    command = [sys.executable, "-m", "search.cli", "run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tuner)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def group_alive(group):
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_result(tmp_path):
    space = write(tmp_path / "four.yaml", FOUR)
    baseline_uri = f"sqlite:///{tmp_path / 'baseline.db'}"
    result = cli(space, baseline_uri, tmp_path / "baseline_tuner")
    assert result.exit_code == 0, result.output
    expected = by_candidate(runs(baseline_uri)[1])
    assert len(expected) == 4

    uri, tuner = f"sqlite:///{tmp_path / 'faulty.db'}", tmp_path / "faulty_tuner"
    rng = random.Random(2026)
    with open(tmp_path / "faulty.log", "w") as log:
        for attempt in range(3):
            process = start(space, uri, tuner, log)
            time.sleep(rng.uniform(6, 16))
            if attempt == 1:  # only the search process: its trial process must not outlive it
                os.kill(process.pid, signal.SIGKILL)
            else:  # the whole process group, as a power cut would
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            deadline = time.monotonic() + 20
            while group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not group_alive(process.pid), "trial or fork-server processes outlived the killed search"
        final = start(space, uri, tuner, log)
        assert final.wait(timeout=300) == 0, (tmp_path / "faulty.log").read_text()[-3000:]

    parents, trials = runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED", "one search, resumed, not several"
    finished_ids = [t.data.params["trial_id"] for t in trials if t.info.status == "FINISHED"]
    assert sorted(finished_ids) == sorted(set(finished_ids)) and len(finished_ids) == 4, "no duplicates"
    assert not [t for t in trials if t.info.status == "RUNNING"], "no run stays RUNNING"
    assert all(t.info.status in ("FINISHED", "KILLED") for t in trials)
    got = by_candidate(trials)
    assert got.keys() == expected.keys()
    for candidate, metrics in expected.items():
        for key in ("best_val_accuracy", "val_loss", "loss", "params"):
            assert got[candidate][key] == metrics[key], (candidate, key)
    assert parents[0].data.metrics["trials_finished"] == 4


def test_a_reloaded_grid_search_tries_every_remaining_combination_once(tmp_path):
    """KerasTuner's grid oracle does not save its grid order, so a reloaded grid search used to fail on its next
    new trial. Interrupted after every possible number of finished trials, with one more trial running, the
    reloaded oracle must hand out the running one again and then exactly the combinations not yet tried."""
    space = load_space(write(tmp_path / "grid.yaml", TINY_SPACE.replace("depth: 8", "depth: [8, 14, 20]")))
    grid = {(depth, residual) for depth in (8, 14, 20) for residual in (False, True)}

    def oracle_in(folder):
        oracle = make_oracle(space)
        oracle._set_project_dir(str(folder), "grid")
        oracle.verbose = 0
        return oracle

    def finish(oracle, trial):
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)

    for finished_before in range(len(grid)):
        folder = tmp_path / f"after-{finished_before}"
        first = oracle_in(folder)
        hp = first.get_space()
        declare(hp, space)
        first.update_space(hp)
        for _ in range(finished_before):
            finish(first, first.create_trial("tuner0"))
        running = first.create_trial("tuner0")  # the search is killed during this one

        reloaded = oracle_in(folder)
        reloaded.reload()
        handed_out = []
        while (trial := reloaded.create_trial("tuner0")).status == "RUNNING":
            handed_out.append(trial.trial_id)
            finish(reloaded, trial)
        assert trial.status == "STOPPED" and handed_out[0] == running.trial_id
        tried = [(t.hyperparameters.values["depth"], t.hyperparameters.values["residual"]) for t in reloaded.trials.values()]
        assert sorted(tried) == sorted(grid), f"after {finished_before} finished trials"
        assert all(t.status == "COMPLETED" for t in reloaded.trials.values())


def interrupted_search(tmp_path):
    """A search killed during its first trials (kill -9 of the whole process group)."""
    space = write(tmp_path / "four.yaml", FOUR)
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    with open(tmp_path / "log", "w") as log:
        process = start(space, uri, tuner, log)
        deadline = time.monotonic() + 120
        while not list((tuner / "tiny").glob("trial_*")):  # until KerasTuner has handed out a trial
            assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "log").read_text()
            time.sleep(0.5)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    time.sleep(1)  # let the trial's run reach MLflow
    return space, uri, tuner


def test_a_changed_space_is_refused_with_its_changes_and_fresh_starts_over(tmp_path):
    space, uri, tuner = interrupted_search(tmp_path)
    before = runs(uri)
    write(space, FOUR.replace("epochs: 2", "epochs: 3"))
    result = cli(space, uri, tuner)
    assert result.exit_code == 2
    assert "training.epochs: 2 -> 3" in result.output and "--fresh" in result.output
    assert "Traceback" not in result.output
    after = runs(uri)
    assert [r.info.run_id for r in after[0] + after[1]] == [r.info.run_id for r in before[0] + before[1]], "nothing written"

    result = cli(space, uri, tuner, "--fresh")
    assert result.exit_code == 0, result.output
    parents, trials = runs(uri)
    assert len(parents) == 2
    old = next(p for p in parents if p.info.run_id == before[0][0].info.run_id)
    assert old.info.status == "KILLED" and "--fresh" in old.data.tags["failure_reason"]
    assert not [t for t in trials if t.info.status == "RUNNING"]
    new_trials = [t for t in trials if t.data.tags[PARENT_TAG] != old.info.run_id]
    assert len(new_trials) == 4 and all(t.data.params["epochs"] == "3" for t in new_trials)


def test_a_finished_search_is_reported_not_repeated(tmp_path):
    space = write(tmp_path / "s.yaml", TINY_SPACE)
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    assert cli(space, uri, tuner).exit_code == 0
    again = cli(space, uri, tuner)
    assert again.exit_code == 0 and "already ran to its end" in again.output
    assert "candidates ranked by" in again.output
    parents, trials = runs(uri)
    assert len(parents) == 1 and len(trials) == 2
    repeated = cli(space, uri, tuner, "--fresh")
    assert repeated.exit_code == 0
    assert len(runs(uri)[0]) == 2


def test_consecutive_failures_stop_the_search_with_exit_1(tmp_path):
    text = FOUR.replace("seed: 7", "seed: 7\n  max_params: 100\n  max_consecutive_failed_trials: 2")
    space = write(tmp_path / "s.yaml", text)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = cli(space, uri, tmp_path / "tuner")
    assert result.exit_code == 1
    assert "search stopped" in result.output and "consecutive failures" in result.output
    parents, trials = runs(uri)
    assert parents[0].info.status == "FAILED" and "consecutive failures" in parents[0].data.tags["failure_reason"]
    assert len(trials) == 2 and all(t.info.status == "FAILED" for t in trials)
    assert all("Oversized model" in t.data.tags["failure_reason"] for t in trials)

    again = cli(space, uri, tmp_path / "tuner")  # a stopped search is continued, not reported as done
    assert again.exit_code == 1 and "already ran" not in again.output
    parents, trials = runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FAILED" and len(trials) == 3


def test_a_search_already_running_elsewhere_is_refused(tmp_path):
    from search.orchestration.resume import exclusive

    space = write(tmp_path / "s.yaml", TINY_SPACE)
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    with exclusive(tuner / "tiny"):
        result = cli(space, uri, tuner)
    assert result.exit_code == 2 and "is being searched by process" in result.output
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("command", [["ui", "--help"]])
def test_servers_bind_to_loopback_by_default(command):
    result = runner.invoke(app, command)
    assert result.exit_code == 0 and "127.0.0.1" in result.output


def test_a_setting_added_since_at_its_default_does_not_change_a_recorded_space():
    from search.orchestration.resume import with_current_defaults
    from search.spec.schema import Space

    current = Space.model_validate({"name": "s", "model": {"family": "resnet"}}).model_dump(mode="json")
    recorded = {k: dict(v) if isinstance(v, dict) else v for k, v in current.items()}
    del recorded["training"]["distribute"]  # as written before the setting existed
    assert with_current_defaults(recorded) == current
    recorded["training"]["epochs"] = 3
    assert with_current_defaults(recorded)["training"]["epochs"] == 3  # a real change still shows
