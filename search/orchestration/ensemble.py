"""`archsearch ensemble`: what the K best kept models give together.

The members are the K best trials that keep a trained model, ranked by the validation score the search
selects by (never by the test part). The ensemble's prediction is the mean of the members' softmax outputs.
Members and ensemble are then judged once, on the test part of the split every member trained on (rebuilt
from the search's logged space file and checked against the members' data hash). The result is logged as a
run of its own (role `ensemble`) in the members' experiment, which `report` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from search.data import Data, load_data
from search.errors import TrackingError
from search.orchestration.export import kept, load_model, ranked_kept
from search.orchestration.report import load_comparison
from search.spec.schema import Dataset
from search.tracking.client import Tracker, experiment_runs, read_artifact_text, run_params
from search.tracking.locations import resolve_tracking_uri
from search.tracking.tags import ENSEMBLE_ROLE, MEMBERS_TAG, NOTE_TAG, ROLE_TAG

BATCH = 256  # images per call of a member


@dataclass(frozen=True)
class Member:
    run_id: str
    run_name: str
    val_accuracy: float  # measured here on the validation part, with the kept replicate's weights
    test_accuracy: float  # measured here, on the test part


@dataclass(frozen=True)
class Ensemble:
    run_id: str
    experiment: str
    members: list[Member]
    val_accuracy: float
    test_accuracy: float


def average(models: list, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The ensemble's class probabilities for `x` (the mean of the members'), and each member's."""
    each = [_probabilities(model, x) for model in models]
    return np.mean(each, axis=0), each


def _probabilities(model, x: np.ndarray) -> np.ndarray:
    """The model called on `x` in batches: `predict` traces a new function for every model, which
    TensorFlow warns about from the fifth on."""
    return np.concatenate([np.asarray(model(x[start:start + BATCH], training=False), dtype=np.float64)
                           for start in range(0, len(x), BATCH)])


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def build_ensemble(tracking_uri: str | None, experiment: str, *, top: int = 3, where: str | None = None) -> Ensemble:
    """Average the `top` best kept models of the experiment's latest searches (matching `where`), judge them
    on the test part and log the ensemble's run."""
    uri = resolve_tracking_uri(tracking_uri)
    chosen = choose_members(uri, experiment, top, where)
    data = _members_data(uri, chosen)
    models = [load_model(kept(uri, row)) for _, row in chosen.iterrows()]
    on_val, each_val = average(models, data.x_val)
    on_test, each_test = average(models, data.x_test)
    members = [Member(row["run_id"], row["run_name"], accuracy(val, data.y_val), accuracy(test, data.y_test))
               for (_, row), val, test in zip(chosen.iterrows(), each_val, each_test)]
    result = {"val_accuracy": accuracy(on_val, data.y_val), "test_accuracy": accuracy(on_test, data.y_test)}
    run_id = _log(uri, experiment, members, result, top, where)
    return Ensemble(run_id, experiment, members, result["val_accuracy"], result["test_accuracy"])


def choose_members(uri: str, experiment: str, top: int, where: str | None) -> pd.DataFrame:
    """The `top` best trials that keep a model, by validation; TrackingError when fewer keep one."""
    if top < 2:
        raise TrackingError(f"--top {top}: an ensemble needs at least 2 members")
    _, trials = load_comparison(uri, [experiment], where=where)
    ranked = ranked_kept(trials, experiment, where)
    if len(ranked) < top:
        raise TrackingError(f"--top {top}: only {len(ranked)} trial(s) of experiment {experiment!r} keep a model; under "
                            "training.save_models: best only each group's best trial does: set save_models: all, or ask for fewer")
    return ranked.head(top)


def _members_data(uri: str, chosen: pd.DataFrame) -> Data:
    """The split the members trained on, rebuilt from their search's resolved space file (its dataset)."""
    hashes = {run_params(uri, run_id).get("data_hash", "") for run_id in chosen["run_id"]}
    if len(hashes) != 1 or "" in hashes:
        raise TrackingError("the members trained on different data splits (data_hash " + ", ".join(sorted(hashes)) +
                            "); narrow them to one data set with --where")
    (expected,) = hashes
    parent = chosen["parent_id"].iloc[0]
    try:
        dataset = Dataset.model_validate(yaml.safe_load(read_artifact_text(uri, parent, "space.yaml"))["dataset"])
    except (yaml.YAMLError, ValidationError, KeyError, TypeError) as error:
        reason = str(error).splitlines()[0]
        raise TrackingError(f"the dataset of search run {parent} cannot be read back from its space.yaml ({reason})") from None
    data = load_data(dataset)
    if data.fingerprint != expected:
        raise TrackingError(f"the data the search read has changed since (split hash {data.fingerprint}, the members' "
                            f"{expected}): the ensemble cannot be judged on the members' test part")
    if not data.has_test:
        raise TrackingError("the search has no test part (dataset.test_split: 0): an ensemble is judged on test")
    return data


def _log(uri: str, experiment: str, members: list[Member], result: dict, top: int, where: str | None) -> str:
    tracker = Tracker(uri, experiment)
    single = members[0].test_accuracy  # the model validation picks: the comparison that makes no choice on test
    note = (f"Ensemble of the {top} best kept models by validation: test accuracy {result['test_accuracy']:.4f} "
            f"against {single:.4f} for the single best by validation")
    run_id = tracker.start_run(f"ensemble top-{top}", params={"top": top, "where": where or "", "members": len(members)},
                               tags={ROLE_TAG: ENSEMBLE_ROLE, MEMBERS_TAG: ",".join(m.run_id for m in members), NOTE_TAG: note})
    try:
        metrics = dict(result)
        for rank, member in enumerate(members, start=1):
            metrics |= {f"member_{rank}/val_accuracy": member.val_accuracy, f"member_{rank}/test_accuracy": member.test_accuracy}
        tests = [m.test_accuracy for m in members]
        metrics |= {"best_member_test_accuracy": max(tests), "mean_member_test_accuracy": float(np.mean(tests))}
        tracker.log_metrics(run_id, metrics)
    except BaseException as error:  # the run must not stay RUNNING, whatever stopped it
        tracker.end_run(run_id, "FAILED", reason=f"{type(error).__name__}: {error}")
        raise
    tracker.end_run(run_id, "FINISHED")
    return run_id


def seed_ensembles(tracking_uri: str, experiment: str, names: dict[int, str], top: int) -> pd.DataFrame:
    """One ensemble per seed of a study's space (`names`: seed -> that seed's space name), each made once: a
    study run again reuses a logged ensemble of the same members (a new search of the seed makes a new one).
    Per seed, the test accuracy of the member validation ranks first (the single model `export` gives), of
    the best and the mean member, and of the ensemble."""
    runs = _finished_ensembles(tracking_uri, experiment)
    rows = []
    for seed, name in names.items():
        members = ",".join(choose_members(tracking_uri, experiment, top, _space_filter(name))["run_id"])
        found = runs[runs[f"tags.{MEMBERS_TAG}"] == members] if len(runs) else runs
        if found.empty:
            build_ensemble(tracking_uri, experiment, top=top, where=_space_filter(name))
            runs = _finished_ensembles(tracking_uri, experiment)
            found = runs[runs[f"tags.{MEMBERS_TAG}"] == members]
        run = found.iloc[-1]
        rows.append({"seed": seed, "space": name, "run_id": run["run_id"], "single": run["metrics.member_1/test_accuracy"],
                     "best_member": run["metrics.best_member_test_accuracy"], "mean_member": run["metrics.mean_member_test_accuracy"],
                     "ensemble": run["metrics.test_accuracy"]})
    return pd.DataFrame(rows)


def _finished_ensembles(tracking_uri: str, experiment: str) -> pd.DataFrame:
    runs = experiment_runs(tracking_uri, experiment, ENSEMBLE_ROLE)
    return runs[runs["status"] == "FINISHED"] if len(runs) else runs


def _space_filter(name: str) -> str:
    return f"space == '{name}'"
