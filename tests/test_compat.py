"""KerasTuner's private API that `search/engine/compat.py` relies on, name by name.

keras-tuner is pinned exactly; when an upgrade moves or renames one of these, this file fails on the
name, before any search does."""

import inspect

import keras_tuner as kt
import pytest
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.src import config, protos
from keras_tuner.src.distribute import oracle_client
from keras_tuner.src.distribute.oracle_chief import OracleServicer
from keras_tuner.src.tuners.gridsearch import LinkedList


def params(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize(
    "function, expected",
    [
        (kt.Oracle._check_consecutive_failures, ["self"]),
        (kt.Oracle._random_values, ["self"]),
        (kt.Oracle._duplicate, ["self", "values"]),
        (kt.oracles.GridSearchOracle._compare, ["self", "a", "b"]),
        (kt.oracles.GridSearchOracle.set_state, ["self", "state"]),
        (BaseTuner._populate_initial_space, ["self"]),
        (LinkedList.insert, ["self", "data", "data_pre"]),
        (OracleServicer.__init__, ["self", "oracle"]),
        (OracleServicer.CreateTrial, ["self", "request", "context"]),
        (OracleServicer.GetTrial, ["self", "request", "context"]),
        (OracleServicer.UpdateTrial, ["self", "request", "context"]),
        (OracleServicer.EndTrial, ["self", "request", "context"]),
    ],
    ids=lambda value: getattr(value, "__qualname__", "") if callable(value) else "",
)
def test_private_methods_keep_their_signatures(function, expected):
    assert params(function) == expected


def test_oracles_keep_the_private_state_the_chief_and_the_grid_fix_read():
    oracle = kt.oracles.GridSearchOracle(objective=kt.Objective("score", "max"), max_trials=2)
    assert oracle._retry_queue == [] and oracle.ongoing_trials == {} and oracle.tuner_ids == set()
    assert oracle.start_order == [] and oracle.end_order == [] and oracle.trials == {}
    assert isinstance(oracle._ordered_ids, LinkedList) and oracle._populate_next == []


def test_the_consecutive_failure_limit_is_still_a_runtime_error_from_that_method():
    """compat.Oracle turns it into SearchStopped by catching RuntimeError in this very method."""
    source = inspect.getsource(kt.Oracle._check_consecutive_failures)
    assert "raise RuntimeError" in source and "consecutive failures" in source
    assert "self._check_consecutive_failures()" in inspect.getsource(inspect.getmodule(kt.Oracle))  # from end_trial


def test_the_servicer_flags_a_stop_and_the_protos_offer_what_the_chief_answers_with():
    assert OracleServicer(oracle=None).stop_triggered is False
    service = protos.get_service()
    for message in ("CreateTrialResponse", "UpdateTrialResponse", "EndTrialResponse"):
        assert hasattr(service, message)
    grpc_service = protos.get_service_grpc()
    assert hasattr(grpc_service, "OracleStub") and hasattr(grpc_service, "add_OracleServicer_to_server")


def test_worker_settings_a_worker_changes(monkeypatch):
    assert isinstance(config.DEBUG, bool)
    assert isinstance(oracle_client.TIMEOUT, int)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker-test")
    client = oracle_client.OracleClient(oracle=None)  # makes a channel; connects on the first call only
    assert hasattr(client, "stub")


def test_public_names_used_instead_of_private_ones():
    assert kt.synchronized is not None
    from keras_tuner.engine.trial import Trial, TrialStatus  # noqa: F401 - the public namespaces the engine imports


def _grid(oracle, folder):
    """`oracle` over a 3 x 2 x 2 grid, keeping its state in `folder`."""
    hp = kt.HyperParameters()
    hp.Choice("depth", [8, 14, 20])
    hp.Choice("residual", [True, False])
    hp.Choice("bn", ["none", "post"])
    oracle.update_space(hp)
    oracle._set_project_dir(str(folder), "grid")
    return oracle


def test_the_grid_hands_every_worker_a_new_candidate_in_the_order_one_process_tries_them(tmp_path):
    """KerasTuner's grid makes a trial's successor only once the trial ended, so a second worker idled."""
    from search.engine.compat import GridSearchOracle

    def finish(oracle, trial):
        oracle.update_trial(trial.trial_id, {"score": 1.0})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)

    sequential = _grid(kt.oracles.GridSearchOracle(objective=kt.Objective("score", "max"), max_trials=12), tmp_path / "one")
    one_at_a_time = []
    while (trial := sequential.create_trial("tuner0")).status == "RUNNING":
        one_at_a_time.append(trial.hyperparameters.values)
        finish(sequential, trial)
    assert len({tuple(v.values()) for v in one_at_a_time}) == 12

    parallel = _grid(GridSearchOracle(objective=kt.Objective("score", "max"), max_trials=12), tmp_path / "two")
    first, second, third = (parallel.create_trial(f"worker{i}") for i in range(3))  # none has ended
    assert [t.status for t in (first, second, third)] == ["RUNNING"] * 3
    handed = [t.hyperparameters.values for t in (first, second, third)]
    for trial in (second, first, third):  # results coming back out of order
        finish(parallel, trial)
    while (trial := parallel.create_trial("worker0")).status == "RUNNING":
        handed.append(trial.hyperparameters.values)
        finish(parallel, trial)
    assert handed == one_at_a_time
