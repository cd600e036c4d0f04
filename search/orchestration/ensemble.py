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

from search.data import Data, load_data
from search.errors import TrackingError
from search.orchestration.export import kept, load_model, ranked_kept
from search.orchestration.report import load_comparison
from search.spec.schema import Space
from search.tracking.client import Tracker, experiment_runs, read_artifact_text
from search.tracking.locations import resolve_tracking_uri
from search.tracking.tags import ENSEMBLE_ROLE, MEMBERS_TAG, NOTE_TAG, ROLE_TAG

BATCH = 256  # images per predict call


@dataclass(frozen=True)
class Member:
    run_id: str
    run_name: str
    val_accuracy: float  # the selection score it was ranked by
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
    each = [np.asarray(model.predict(x, batch_size=BATCH, verbose=0), dtype=np.float64) for model in models]
    return np.mean(each, axis=0), each


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def build_ensemble(tracking_uri: str | None, experiment: str, *, top: int = 3, where: str | None = None) -> Ensemble:
    """Average the `top` best kept models of the experiment's latest searches (matching `where`), judge them
    on the test part and log the ensemble's run."""
    if top < 2:
        raise TrackingError(f"--top {top}: an ensemble needs at least 2 members")
    uri = resolve_tracking_uri(tracking_uri)
    _, trials = load_comparison(uri, [experiment], where=where)
    ranked = ranked_kept(trials, experiment, where)
    if len(ranked) < top:
        raise TrackingError(f"--top {top}: only {len(ranked)} trial(s) of experiment {experiment!r} keep a model; under "
                            "training.save_models: best only each group's best trial does: set save_models: all, or ask for fewer")
    chosen = ranked.head(top)
    data = _members_data(uri, chosen)
    models = [load_model(kept(uri, row)) for _, row in chosen.iterrows()]
    on_val, each_val = average(models, data.x_val)
    on_test, each_test = average(models, data.x_test)
    members = [Member(row["run_id"], row["run_name"], accuracy(val, data.y_val), accuracy(test, data.y_test))
               for (_, row), val, test in zip(chosen.iterrows(), each_val, each_test)]
    result = {"val_accuracy": accuracy(on_val, data.y_val), "test_accuracy": accuracy(on_test, data.y_test)}
    run_id = _log(uri, experiment, members, result, top, where)
    return Ensemble(run_id, experiment, members, result["val_accuracy"], result["test_accuracy"])


def _members_data(uri: str, chosen: pd.DataFrame) -> Data:
    """The split the members trained on, rebuilt from the search's resolved space file."""
    hashes = set(chosen["data_hash"].astype(str)) if "data_hash" in chosen else set()
    if len(hashes) != 1:
        raise TrackingError("the members trained on different data splits (data_hash " + ", ".join(sorted(hashes)) +
                            "); narrow them to one data set with --where")
    space = Space.model_validate(yaml.safe_load(read_artifact_text(uri, chosen["parent_id"].iloc[0], "space.yaml")))
    data = load_data(space.dataset)
    if data.fingerprint not in hashes:
        raise TrackingError(f"the data the search read has changed since (split hash {data.fingerprint}, the members' "
                            f"{hashes.pop()}): the ensemble cannot be judged on the members' test part")
    if len(data.y_test) == 0:
        raise TrackingError("the search has no test part (dataset.test_split: 0): an ensemble is judged on test")
    return data


def _log(uri: str, experiment: str, members: list[Member], result: dict, top: int, where: str | None) -> str:
    tracker = Tracker(uri, experiment)
    best = max(m.test_accuracy for m in members)
    note = (f"Ensemble of the {top} best kept models by validation: test accuracy {result['test_accuracy']:.4f} "
            f"against {best:.4f} for its best member")
    run_id = tracker.start_run(f"ensemble top-{top}", params={"top": top, "where": where or "", "members": len(members)},
                               tags={ROLE_TAG: ENSEMBLE_ROLE, MEMBERS_TAG: ",".join(m.run_id for m in members), NOTE_TAG: note})
    metrics = dict(result)
    for rank, member in enumerate(members, start=1):
        metrics |= {f"member_{rank}/val_accuracy": member.val_accuracy, f"member_{rank}/test_accuracy": member.test_accuracy}
    metrics |= {"best_member_test_accuracy": best, "mean_member_test_accuracy": float(np.mean([m.test_accuracy for m in members]))}
    tracker.log_metrics(run_id, metrics)
    tracker.end_run(run_id, "FINISHED")
    return run_id


def seed_ensembles(tracking_uri: str, experiment: str, names: dict[int, str], top: int) -> pd.DataFrame:
    """One ensemble per seed of a study's space (`names`: seed -> that seed's space name), each made once
    (a study run again reuses the logged one): per seed, the test accuracy of the member validation ranks
    first (the single model `export` gives), of the best and the mean member, and of the ensemble."""
    def logged() -> pd.DataFrame:
        runs = experiment_runs(tracking_uri, experiment, ENSEMBLE_ROLE)
        return runs[runs["status"] == "FINISHED"] if len(runs) else runs

    def made(runs: pd.DataFrame, where: str) -> pd.DataFrame:
        if runs.empty:
            return runs
        return runs[(runs.get("params.where") == where) & (runs.get("params.top") == str(top))]

    runs = logged()
    for name in names.values():
        if made(runs, _space_filter(name)).empty:
            build_ensemble(tracking_uri, experiment, top=top, where=_space_filter(name))
    runs = logged()
    rows = []
    for seed, name in names.items():
        run = made(runs, _space_filter(name)).sort_values("start_time").iloc[-1]
        rows.append({"seed": seed, "space": name, "run_id": run["run_id"], "single": run["metrics.member_1/test_accuracy"],
                     "best_member": run["metrics.best_member_test_accuracy"], "mean_member": run["metrics.mean_member_test_accuracy"],
                     "ensemble": run["metrics.test_accuracy"]})
    return pd.DataFrame(rows)


def _space_filter(name: str) -> str:
    return f"space == '{name}'"
