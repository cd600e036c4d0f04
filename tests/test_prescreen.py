"""Prescreening: random search and evolution train the best-scoring of what they sample, and every
prescreened trial logs the score it was ranked by."""

import keras_tuner as kt
import pytest
import yaml
from conftest import TINY_SPACE, write
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from search.cli import app
from search.data import load_data
from search.engine.evolution import RegularizedEvolutionOracle
from search.engine.hypermodel import declare
from search.engine.oracles import make_oracle
from search.engine.prescreen import PrescreenedRandomOracle, ProxyScorer
from search.spec.schema import Space
from search.tracking.tags import PARENT_TAG

AXES = {"name": "axes", "model": {"family": "resnet", "depth": [8, 14, 20, 26, 32], "width": [0.25, 0.5, 1.0, 2.0],
                                  "kernel": [1, 3, 5]}}


class Recording:
    """A made-up proxy (the sum of the numeric values) that remembers every call."""

    def __init__(self):
        self.calls: list[tuple[dict, float]] = []

    def __call__(self, hp: kt.HyperParameters) -> float:
        value = made_up(hp.values)
        self.calls.append((dict(hp.values), value))
        return value


def made_up(values: dict) -> float:
    return float(sum(v for v in values.values() if isinstance(v, (int, float))))


def declared(oracle, tmp_path):
    hp = kt.HyperParameters()
    declare(hp, Space.model_validate(AXES))
    oracle.update_space(hp)
    oracle._set_project_dir(str(tmp_path), "prescreen")
    return oracle


def trained(oracle, scorer: Recording, trials: int) -> list[tuple[dict, list]]:
    """Each trial's values and the (values, score) pairs its oracle scored to choose them."""
    chosen = []
    for _ in range(trials):
        before = len(scorer.calls)
        trial = oracle.create_trial("worker")
        chosen.append((trial.hyperparameters.values, scorer.calls[before:]))
        oracle.update_trial(trial.trial_id, {"val_accuracy": made_up(trial.hyperparameters.values) / 100})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return chosen


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_each_trial_is_the_best_scoring_of_the_candidates_sampled_for_it(tmp_path, strategy):
    scorer = Recording()
    options = {"objective": kt.Objective("val_accuracy", "max"), "max_trials": 30, "seed": 3, "scorer": scorer, "sampled": 4}
    oracle = (PrescreenedRandomOracle(**options) if strategy == "random"
              else RegularizedEvolutionOracle(population_size=6, sample_size=3, **options))
    chosen = trained(declared(oracle, tmp_path), scorer, 20)
    for values, scored in chosen:
        assert 2 <= len(scored) <= 4, "up to four distinct draws scored per trial"
        assert len({str(sorted(v.items())) for v, _ in scored}) == len(scored), "a repeated draw is scored once"
        assert values == max(scored, key=lambda pair: pair[1])[0]
    # without a scorer the same oracle samples once per trial
    plain = (PrescreenedRandomOracle if strategy == "random" else RegularizedEvolutionOracle)(
        **{k: v for k, v in options.items() if k not in ("scorer", "sampled")}, **({} if strategy == "random" else {"population_size": 6}))
    declared(plain, tmp_path / "plain")
    assert plain.scorer is None and plain.create_trial("w").status == "RUNNING"


def test_make_oracle_prescreens_only_where_the_space_asks_and_a_scorer_is_given():
    space = Space.model_validate(AXES | {"search": {"strategy": "random", "max_trials": 5, "prescreen": {"proxy": "snip", "keep": 0.3}}})
    oracle = make_oracle(space, scorer=Recording())
    assert isinstance(oracle, PrescreenedRandomOracle) and oracle.sampled == 3  # round(1 / 0.3)
    assert make_oracle(space).scorer is None  # a worker's oracle, which samples nothing
    assert make_oracle(Space.model_validate(AXES | {"search": {"strategy": "random", "max_trials": 5}}), scorer=Recording()).scorer is None


@pytest.mark.parametrize(("search", "message"), [
    ({"strategy": "grid", "prescreen": {"proxy": "synflow"}}, "search.prescreen: only random and evolution"),
    ({"strategy": "random", "max_trials": 2, "prescreen": {"proxy": "accuracy"}}, "search.prescreen.proxy: expected 'synflow'"),
    ({"strategy": "random", "max_trials": 2, "prescreen": {"proxy": "snip", "keep": 0}}, "search.prescreen.keep"),
])
def test_a_wrong_prescreen_is_refused_at_its_key(tmp_path, search, message):
    space = yaml.safe_load(TINY_SPACE) | {"search": search}
    result = CliRunner().invoke(app, ["validate", str(write(tmp_path / "s.yaml", yaml.safe_dump(space)))])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_prescreened_search_logs_the_score_it_ranked_each_trial_by(tmp_path):
    space = yaml.safe_load(TINY_SPACE)
    space["model"] = {"family": "resnet", "depth": 8, "width": [0.25, 0.5, 1.0], "residual": [False, True]}
    space["search"] = {"strategy": "random", "max_trials": 2, "seed": 7, "prescreen": {"proxy": "synflow", "keep": 0.5}}
    path = write(tmp_path / "s.yaml", yaml.safe_dump(space))
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    result = CliRunner().invoke(app, ["run", str(path), "--tracking-uri", uri, "--tuner-dir", str(tmp_path / "tuner")])
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], f"tags.`{PARENT_TAG}` != ''")
    assert len(runs) == 2
    loaded = Space.model_validate(space)
    scorer = ProxyScorer(loaded, load_data(loaded.dataset))
    for run in runs:
        hp = kt.HyperParameters()
        declare(hp, loaded)
        hp.values |= {"width": float(run.data.params["width"]), "residual": run.data.params["residual"] == "True"}
        # the trial process's score of the trained net is the search process's, by which it was chosen
        assert run.data.metrics["proxy_score"] == pytest.approx(scorer(hp), rel=1e-5)
        assert run.data.params["prescreen"] == "synflow/0.5"
