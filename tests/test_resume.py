"""Crash-safe searches: kill -9 and a full disk inside a state write, damaged state files repaired on resume, refusals of changed spaces, --fresh,
reruns of finished searches, and a search stopped by consecutive failures."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_SPACE, write
from faults import faulty_writer
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search import files
from search.cli import app
from search.engine.hypermodel import declare
from search.engine.oracles import make_oracle
from search.spec.reader import load_space
from search.tracking.tags import PARENT_TAG

FAULTS = Path(__file__).parent / "faults.py"
# Three candidates of one small ResNet-8 (a trial costs the tracing of its graph, hardly its epochs), each
# learning to its own accuracy: a fault can hit before, between and after trials, and results tell trials apart.
THREE = TINY_SPACE.replace("residual: [false, true]", "residual: false").replace("learning_rate: 0.05", "learning_rate: [0.05, 0.03, 0.02]")
FOUR = TINY_SPACE.replace("depth: 8", "depth: [8, 14]")  # 4 candidates: depth x residual
ONE = TINY_SPACE.replace("residual: [false, true]", "residual: true")
runner = CliRunner()


def runs(uri, experiment="tiny"):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    everything = client.search_runs([found.experiment_id]) if found else []
    return [r for r in everything if PARENT_TAG not in r.data.tags], [r for r in everything if PARENT_TAG in r.data.tags]


def by_candidate(trials):
    finished = [t for t in trials if t.info.status == "FINISHED"]
    return {(t.data.params["learning_rate"], t.data.params["residual"]): t.data.metrics for t in finished}


def cli(space, uri, tuner, *extra):
    return runner.invoke(app, ["run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tuner), *extra])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The three-candidate search run once without faults: what every interrupted run must end with."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    space = write(folder / "three.yaml", THREE)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    result = cli(space, uri, folder / "tuner")
    assert result.exit_code == 0, result.output
    expected = by_candidate(runs(uri)[1])
    assert len(expected) == 3
    return space, expected


def with_fault(mode, name, fragment, count, space, uri, tuner, folder):
    """Run the search with a fault inside one state write (tests/faults.py); the mark says it hit."""
    mark = folder / f"{mode}.mark"
    command = [sys.executable, str(FAULTS), mode, name, fragment, str(count), str(mark), "--",
               "run", str(space), "--tracking-uri", uri, "--tuner-dir", str(tuner)]
    process = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=folder)
    assert mark.exists(), f"the fault never hit:\n{process.stderr[-2000:]}"
    return process, Path(mark.read_text())


def assert_resumed_to_the_uninterrupted_result(uri, expected):
    parents, trials = runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED", "one search, resumed, not several"
    finished_ids = [t.data.params["trial_id"] for t in trials if t.info.status == "FINISHED"]
    assert sorted(finished_ids) == sorted(set(finished_ids)) and len(finished_ids) == 3, "every trial FINISHED once"
    assert not [t for t in trials if t.info.status == "RUNNING"], "no run stays RUNNING"
    got = by_candidate(trials)
    assert got.keys() == expected.keys()
    for candidate, metrics in expected.items():
        for key in ("best_val_accuracy", "val_loss", "loss", "params"):
            assert got[candidate][key] == metrics[key], (candidate, key)
    assert parents[0].data.metrics["trials_finished"] == 3


def test_kill_9_inside_a_state_write_then_resume_gives_the_uninterrupted_result(tmp_path, uninterrupted):
    """The worst moment: the second finished trial's file half written. Then the damage a truncating writer
    (KerasTuner's own, an older archsearch) would have left on top: an empty oracle.json and a cut trial file,
    with no good copies. The resume repairs both and ends as the uninterrupted search did."""
    space, expected = uninterrupted
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    killed, written = with_fault("kill", "trial.json", '"status": "COMPLETED"', 2, space, uri, tuner, tmp_path)
    assert killed.returncode == -signal.SIGKILL
    assert 0 < written.stat().st_size, "killed with the temporary file half written"
    project = tuner / "tiny"
    for path in [project / "oracle.json", *project.glob("trial_*/trial.json")]:
        json.loads(path.read_text())  # the files the resume reads are whole
    finished = [t.data.params["trial_id"] for t in runs(uri)[1] if t.info.status == "FINISHED"]
    assert len(finished) == 2, "the second trial was logged FINISHED before its state write"
    best_before = max(t.data.metrics["best_val_accuracy"] for t in runs(uri)[1] if t.info.status == "FINISHED")

    (project / "oracle.json").write_text("")
    first = project / f"trial_{finished[0]}" / "trial.json"
    first.write_text(first.read_text()[: first.stat().st_size // 2])
    for copy in project.glob("**/*.json.last"):
        copy.unlink()
    result = cli(space, uri, tuner)
    assert result.exit_code == 0, result.output
    assert f"{first}: damaged; rebuilt from its finished MLflow run" in result.output
    assert f"{project / 'oracle.json'}: damaged; rebuilt from the 2 trial files" in result.output
    shown = [float(best) for best in re.findall(r"\(best ([0-9.]+)\)", result.output)]
    assert shown and shown[0] >= round(best_before, 4), "the display's best counts the trials before the kill"
    assert_resumed_to_the_uninterrupted_result(uri, expected)


def test_a_full_disk_during_a_state_write_stops_cleanly_and_the_search_resumes(tmp_path, uninterrupted, monkeypatch):
    """The disk fills while the oracle's state is written after the first trial. A full disk, unlike a kill,
    needs no process of its own: the same hook as tests/faults.py, in this one."""
    space, expected = uninterrupted
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    mark = tmp_path / "enospc.mark"
    with monkeypatch.context() as patched:
        patched.setattr(files, "_write_all", faulty_writer("enospc", "oracle.json", '"end_order": ["0"]', 1, mark, files._write_all))
        full = cli(space, uri, tuner)
    assert mark.exists(), f"the fault never hit:\n{full.output[-2000:]}"
    written = Path(mark.read_text())
    assert full.exit_code == 2, full.output[-2000:]
    oracle = tuner / "tiny" / "oracle.json"
    assert f"cannot write the search's state {oracle}: No space left on device" in full.stderr
    assert "Traceback" not in full.output and not written.exists(), "no temporary file is left behind"
    assert json.loads(oracle.read_text())["end_order"] == [], "the last good state is kept"
    result = cli(space, uri, tuner)
    assert result.exit_code == 0, result.output
    assert_resumed_to_the_uninterrupted_result(uri, expected)


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
    """A search killed by kill -9 inside the state write of its first trial, before it trained."""
    space = write(tmp_path / "tiny.yaml", TINY_SPACE)
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    killed, _ = with_fault("kill", "trial.json", '"status": "RUNNING"', 1, space, uri, tuner, tmp_path)
    assert killed.returncode == -signal.SIGKILL
    return space, uri, tuner


def test_a_changed_space_is_refused_with_its_changes_and_fresh_starts_over(tmp_path):
    space, uri, tuner = interrupted_search(tmp_path)
    before = runs(uri)
    write(space, TINY_SPACE.replace("epochs: 2", "epochs: 3"))
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
    assert len(new_trials) == 2 and all(t.data.params["epochs"] == "3" for t in new_trials)  # every candidate, anew


def test_a_finished_search_is_reported_not_repeated(tmp_path):
    space = write(tmp_path / "s.yaml", ONE)
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    assert cli(space, uri, tuner).exit_code == 0
    again = cli(space, uri, tuner)
    assert again.exit_code == 0 and "already ran to its end" in again.output
    assert "candidates ranked by" in again.output
    parents, trials = runs(uri)
    assert len(parents) == 1 and len(trials) == 1
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


def test_the_same_search_under_another_tuner_folder_is_refused_while_the_first_runs(tmp_path):
    """The lock is the search's (space, data, tracking URI), not the tuner folder's: a second folder would
    otherwise start a second parent run for the same search."""
    from search.data import load_data
    from search.distributed.distribution import search_key
    from search.orchestration.resume import exclusive_search

    space_path = write(tmp_path / "s.yaml", ONE)
    space = load_space(space_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    key = search_key(space.model_dump(mode="json"), load_data(space.dataset).fingerprint)
    with exclusive_search(key, uri, tmp_path / "first" / "tiny"):
        result = cli(space_path, uri, tmp_path / "second")
    assert result.exit_code == 2, result.output
    assert "this search (same space, data and tracking URI) is being run by process" in result.output
    assert str((tmp_path / "first" / "tiny").resolve()) in result.output
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "second").exists()
    marked_up = ONE.replace("seed: 7", "seed: 8").replace("experiment: tiny", "experiment: 'tiny [/bold][red]'")
    other = cli(write(tmp_path / "o.yaml", marked_up), uri, tmp_path / "second")
    assert other.exit_code == 0, other.output  # another search (another seed) is not locked out
    assert "MLflow experiment 'tiny [/bold][red]'" in other.output, "names are shown as text, not as rich markup"


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


def test_fresh_starts_over_a_state_file_damaged_beyond_repair(tmp_path):
    """The refusal of a damaged archsearch.json says to use --fresh; --fresh must then get past it."""
    space = write(tmp_path / "s.yaml", TINY_SPACE.replace("residual: [false, true]", "residual: true"))
    uri, tuner = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "tuner"
    state = tuner / "tiny" / "archsearch.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"space": {"name": "ti')
    refused = cli(space, uri, tuner)
    assert refused.exit_code == 2 and "is damaged and has no good copy; run with --fresh" in refused.output, refused.output
    result = cli(space, uri, tuner, "--fresh")
    assert result.exit_code == 0, result.output
    assert json.loads(state.read_text())["status"] == "finished"
