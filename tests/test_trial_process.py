"""The trial process: kept from one trial to the next while healthy and small, replaced otherwise, and a
trial's results do not depend on what the process trained before."""

import os
import signal

import keras_tuner as kt
import pytest
from conftest import TINY_SPACE, write

from search.data import load_data
from search.engine import trial_process
from search.engine.hypermodel import declare
from search.engine.trial_process import TrialJob, TrialProcess
from search.engine.trial_server import process_context
from search.spec.reader import load_space


@pytest.fixture(scope="module")
def make_job(tmp_path_factory):
    """Jobs for the tiny space's two candidates (plain and residual ResNet-8), on data saved as a search does."""
    folder = tmp_path_factory.mktemp("trials")
    space = load_space(write(folder / "tiny.yaml", TINY_SPACE.replace("epochs: 2", "epochs: 1")))
    load_data(space.dataset, space.search.seed).save(folder / "data.npz")

    def job(residual: bool, **space_changes) -> TrialJob:
        trial_space = space.model_copy(update={"search": space.search.model_copy(update=space_changes)})
        hp = kt.HyperParameters()
        declare(hp, trial_space)
        hp.values["residual"] = residual
        return TrialJob(space=trial_space, data_path=folder / "data.npz", hyperparameters=hp, seed=7, executions=1, epochs=1)

    return job


def train(process: TrialProcess, job: TrialJob) -> list[dict]:
    epochs = []
    process.run(job, lambda kind, payload: epochs.append(payload[2]) if kind == "epoch" else None)
    return epochs


def test_a_trial_gives_the_same_results_alone_and_after_another(make_job):
    alone, shared = TrialProcess(process_context()), TrialProcess(process_context())
    try:
        expected = train(alone, make_job(residual=False))
        train(shared, make_job(residual=True))
        pid = shared.process.pid
        assert train(shared, make_job(residual=False)) == expected
        assert shared.process.pid == pid  # the second trial did run in the same process
    finally:
        alone.close()
        shared.close()


def test_the_process_is_replaced_after_a_failed_trial_and_once_it_has_grown(make_job, monkeypatch):
    process = TrialProcess(process_context())
    try:
        train(process, make_job(residual=False))
        first = process.process
        with pytest.raises(kt.errors.FailedTrialError, match="Oversized model"):
            train(process, make_job(residual=False, max_params=10))
        assert process.process is None and not first.is_alive()

        monkeypatch.setattr(trial_process, "GROWTH_LIMIT_MIB", -1)  # any size is too big: one trial per process
        train(process, make_job(residual=True))
        assert process.process is None
    finally:
        process.close()


def test_a_process_lost_between_trials_is_replaced_without_failing_the_next_trial(make_job):
    process = TrialProcess(process_context())
    try:
        train(process, make_job(residual=False))
        lost = process.process
        os.kill(lost.pid, signal.SIGKILL)
        lost.join()
        assert len(train(process, make_job(residual=False))) == 1  # one epoch, trained in a new process
        assert process.process.pid != lost.pid
    finally:
        process.close()


def test_closing_stops_an_idle_process(make_job):
    process = TrialProcess(process_context())
    train(process, make_job(residual=False))
    child = process.process
    assert child.is_alive()
    process.close()
    assert not child.is_alive() and process.process is None
