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
