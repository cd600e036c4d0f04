"""Check a search's KerasTuner state before it is reloaded, and repair what is damaged.

archsearch writes the state atomically (`compat.write_state`), but a folder written by an older version, a
disk error or a hand edit can still hold a cut or empty file, and KerasTuner would then fail on every
resume with a JSONDecodeError. Each damaged file is rebuilt: a finished trial from its MLflow run (the store
is the source of truth), anything else from the last good copy the atomic writer keeps; the oracle's own
file, when no good copy is left, from the trial files. What cannot be rebuilt is refused with one line.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import keras_tuner as kt

from search.engine.compat import ORACLE_FILE, TRIAL_FILE, rebuilt_oracle_state, write_state
from search.engine.hypermodel import declare
from search.engine.oracles import make_oracle, objective
from search.errors import StateError
from search.files import last_good_copy
from search.spec.schema import Space

_TRIAL_KEYS = {"trial_id", "hyperparameters", "metrics", "score", "best_step", "status", "message"}
_ORACLE_KEYS = {"ongoing_trials", "hyperparameters", "start_order", "end_order", "run_times", "retry_queue"}
_TYPES = {  # what KerasTuner's reload indexes into, so what a parseable but damaged file must still be
    "trial_id": str, "hyperparameters": dict, "metrics": dict, "status": str,
    "ongoing_trials": dict, "start_order": list, "end_order": list, "run_times": dict, "retry_queue": list,
}


def repair_state(project: Path, space: Space, finished: Callable[[], Mapping[str, dict]]) -> list[str]:
    """Make every state file in `project` readable again; returns one line per file repaired.

    `finished()` maps the trial ids of the search's FINISHED MLflow runs to {"params": ..., "metrics": ...};
    it is asked once, and only when a trial file is damaged. A repaired file replaces the damaged one without
    keeping it as the last good copy."""
    repaired = []
    trials = {}
    records = functools.cache(finished)
    for folder in sorted(project.glob("trial_*")):
        path = folder / TRIAL_FILE
        state = _readable(path, _TRIAL_KEYS)
        trial_id = folder.name.removeprefix("trial_")
        if state is None and path.exists():
            state, source = _rebuilt_trial(path, trial_id, space, records().get(trial_id))
            write_state(str(path), state, keep_previous=False)
            repaired.append(f"{path}: damaged; rebuilt from {source}")
        if state is not None:
            trials[state["trial_id"]] = state
    path = project / ORACLE_FILE
    state = _readable(path, _ORACLE_KEYS)
    if (path.exists() or trials) and (state is None or not _refers_to_known_trials(state, trials)):
        what = "damaged" if path.exists() else "missing"
        state, source = _last_good(path, _ORACLE_KEYS), "its last good copy"
        if state is None or not _refers_to_known_trials(state, trials):
            state, source = rebuilt_oracle_state(_declared_oracle(space), trials), f"the {len(trials)} trial files"
        write_state(str(path), state, keep_previous=False)
        repaired.append(f"{path}: {what}; rebuilt from {source}")
    for path in project.glob("*.json"):  # the tuner's own file holds no state of its own
        if path.name not in (ORACLE_FILE,) and path.name.startswith("tuner") and _readable(path, set()) is None:
            write_state(str(path), {}, keep_previous=False)
            repaired.append(f"{path}: damaged; rewritten (it holds no search state)")
    return repaired


def _declared_oracle(space: Space):
    """A fresh oracle that knows the space's hyperparameters, as the tuner declares them on a new search
    (a reloaded tuner does not declare them again: they come from the oracle's saved state)."""
    oracle = make_oracle(space)
    hp = oracle.get_space()
    declare(hp, space)
    oracle.update_space(hp)
    return oracle


def _readable(path: Path, keys: set[str]) -> dict | None:
    """The file's JSON object if it parses and has `keys`; None for a damaged or missing file."""
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(state, dict) or not keys <= state.keys():
        return None
    return state if all(isinstance(state[key], _TYPES.get(key, object)) for key in keys) else None


def _last_good(path: Path, keys: set[str]) -> dict | None:
    return _readable(last_good_copy(path), keys)


def _rebuilt_trial(path: Path, trial_id: str, space: Space, record: dict | None) -> tuple[dict, str]:
    if record is not None and (state := _trial_from_record(trial_id, space, record)) is not None:
        return state, "its finished MLflow run"
    if (state := _last_good(path, _TRIAL_KEYS)) is not None:
        return state, "its last good copy"
    raise StateError(
        f"{path} is damaged and neither the MLflow store nor a last good copy can rebuild it; "
        "run with --fresh to start the search over"
    )


def _trial_from_record(trial_id: str, space: Space, record: dict) -> dict | None:
    """A COMPLETED trial with the values and score of its MLflow run (None if the run does not hold every
    hyperparameter value, as for searched cells, whose per-block choices are logged as one genotype)."""
    hp = kt.HyperParameters()
    declare(hp, space)
    values = {}
    for parameter in hp.space:
        text = record["params"].get(parameter.name)
        choices = [parameter.value] if isinstance(parameter, kt.engine.hyperparameters.Fixed) else parameter.values
        matching = [choice for choice in choices if str(choice) == text]
        if not matching:
            return None
        values[parameter.name] = matching[0]
    hp.values = values
    goal = objective(space)
    score = record["metrics"].get(f"best_{goal.name}")
    if score is None:
        return None
    trial = kt.engine.trial.Trial(hyperparameters=hp, trial_id=trial_id, status=kt.engine.trial.TrialStatus.COMPLETED)
    trial.metrics.register(goal.name, direction=goal.direction)
    trial.metrics.update(goal.name, score, step=0)
    trial.score, trial.best_step = score, 0
    return trial.get_state()


def _refers_to_known_trials(state: dict, trials: dict) -> bool:
    named = set(state["start_order"]) | set(state["end_order"]) | set(state["ongoing_trials"].values()) | set(state["retry_queue"])
    return named <= trials.keys()
