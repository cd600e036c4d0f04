"""The trial process: kept from one trial to the next while healthy and small, replaced otherwise, and a
trial's results do not depend on what the process trained before."""

import os
import signal
from dataclasses import replace

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
    load_data(space.dataset).save(folder / "data.npz")

    def job(residual: bool, **space_changes) -> TrialJob:
        trial_space = space.model_copy(update={"search": space.search.model_copy(update=space_changes)})
        hp = kt.HyperParameters()
        declare(hp, trial_space)
        hp.values["residual"] = residual
        return TrialJob(space=trial_space, data_path=folder / "data.npz", hyperparameters=hp, seeds=trial_space.search.replicate_seeds(), epochs=1)

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


def events_of(process: TrialProcess, job: TrialJob) -> list[tuple]:
    events = []
    process.run(job, lambda kind, payload: events.append((kind, *payload)))
    return events


def test_each_replicate_has_its_own_seed_and_is_tested_once_on_its_selected_epoch(make_job):
    """Two replicates differ (their seeds move the initialisation and the data order); the same seed
    gives the same replicate again; each is tested once, at the epoch validation selected."""
    process = TrialProcess(process_context())
    try:
        job = replace(make_job(residual=True, repeats=2), epochs=3)
        events = events_of(process, job)
        again = events_of(process, replace(job, seeds=[job.seeds[1]]))
    finally:
        process.close()
    assert job.seeds == [700, 701]
    tested = [e[2] for e in events if e[0] == "tested"]
    assert [e[1] for e in events if e[0] == "tested"] == [0, 1]
    curves = [[e[3] for e in events if e[0] == "epoch" and e[1] == r] for r in (0, 1)]
    assert curves[0] != curves[1] and tested[0]["test_loss"] != tested[1]["test_loss"]
    assert [e[3] for e in again if e[0] == "epoch"] == curves[1]  # replicate 1 alone: the same numbers
    assert [e[2] for e in again if e[0] == "tested"][0] == tested[1]
    for curve, result in zip(curves, tested):
        scores = [logs["val_accuracy"] for logs in curve]
        assert result["selected_epoch"] == scores.index(max(scores)) + 1
        assert 0 <= result["test_accuracy"] <= 1 and result["converged"] in (0.0, 1.0) and "loss_slope" in result


def test_keep_best_restores_the_selected_epochs_weights():
    """Evaluating validation again on the kept weights gives the selected epoch's score, not the last one's."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 8)).astype("float32"), rng.integers(0, 2, 256)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    kept = trial_process.KeepBest("val_loss")
    history = model.fit(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=6, verbose=0, callbacks=[kept], shuffle=False)
    losses = history.history["val_loss"]
    assert kept.epoch == losses.index(min(losses))
    model.set_weights(kept.weights)
    assert model.evaluate(x[192:], y[192:], verbose=0, return_dict=True)["loss"] == pytest.approx(min(losses), rel=1e-5)
