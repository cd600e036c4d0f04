"""A Pareto study: searches compared by their validation fronts judged on the test set, from one reference
point for the study, paired by seed; and the rules that refuse a study that cannot be compared so."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from conftest import write
from mlflow import MlflowClient
from scipy import stats
from typer.testing import CliRunner

from search.cli import app
from search.errors import SpaceError
from search.tracking.tags import ROLE_TAG, SEARCH_ROLE
from search.reporting.fronts import Reference, compare_fronts, study_reference, validation_front

runner = CliRunner()


def trial(search, seed, number, architecture, val, test, cost, judged=None):
    return {"search": search, "seed": seed, "trial": number, "architecture": architecture, "val_accuracy": val,
            "test_accuracy": test, "cost": cost, "judged_cost": cost if judged is None else judged}


def test_the_front_is_chosen_on_validation_and_judged_on_test():
    trials = pd.DataFrame([
        trial("a", 1, 1, "x", val=0.9, test=0.5, cost=5.0),
        trial("a", 1, 2, "y", val=0.8, test=0.9, cost=6.0),  # beaten on validation: its better test accuracy must not count
    ])
    front = validation_front(trials)
    assert front["architecture"].tolist() == ["x"]
    reference = Reference(0.1, 10.0, "")
    # one point: (0.5 - 0.1) x (10 - 5) of the (1 - 0.1) x 10 box
    assert compare_fronts(trials, pd.DataFrame({"search": ["a"], "seed": [1], "search_hours": [0.1]}), "a", reference).runs[
        "hypervolume"].item() == pytest.approx(0.4 * 5 / 9)


def test_the_reference_is_fixed_by_the_trials_the_first_seed_shares():
    trials = pd.DataFrame([
        trial("a", 1, 1, "x", 0.5, 0.5, 1.0, judged=2.0), trial("b", 1, 1, "x", 0.5, 0.5, 1.1, judged=3.0),
        trial("a", 1, 2, "y", 0.6, 0.6, 9.0), trial("b", 1, 2, "z", 0.6, 0.6, 8.0),  # not shared: they do not count
        trial("a", 2, 1, "w", 0.6, 0.6, 50.0), trial("b", 2, 1, "w", 0.6, 0.6, 50.0),  # another seed: does not count
    ])
    reference = study_reference(trials, 2, 0.1, 1.1)
    assert reference.cost == pytest.approx(1.1 * 2.5), "the median of the shared architecture's two timings"
    assert "1 architectures the searches of seed 1 share" in reference.note
    unshared = trials[trials["architecture"] != "x"]
    assert study_reference(unshared, 2, 0.1, 1.1).cost == pytest.approx(9.9)
    assert study_reference(trials, 3, 0.1, 1.1).cost == pytest.approx(9.9), "shared by two searches of three is not shared"


def test_a_search_that_found_nothing_scores_zero_and_stays_paired():
    trials = pd.DataFrame([trial("base", seed, 1, "x", 0.5, 0.5, 1.0) for seed in (1, 2)]
                          + [trial("other", 1, 1, "y", float("nan"), 0.6, 1.0)])  # seed 1: no validation figure; seed 2: no trial
    hours = pd.DataFrame({"search": ["base", "base", "other", "other"], "seed": [1, 2, 1, 2], "search_hours": 0.1})
    found = compare_fronts(trials, hours, "base", Reference(0.1, 10.0, ""))
    other = found.runs[found.runs["search"] == "other"]
    assert other["hypervolume"].tolist() == [0.0, 0.0] and other["front"].tolist() == [0, 0]
    assert found.differences["other"]["hypervolume"].test == "paired" and found.verdict("other") == "worse"


def test_searches_are_paired_by_seed_against_the_baseline():
    rng = np.random.default_rng(0)
    rows = []
    for seed, search in itertools.product([1, 2, 3, 4], ["base", "other"]):
        for number in range(1, 4):
            rows.append(trial(search, seed, number, f"{search}{seed}{number}", *rng.uniform(0.3, 0.9, 2), rng.uniform(1, 9)))
    trials = pd.DataFrame(rows)
    hours = trials[["search", "seed"]].drop_duplicates().assign(search_hours=0.01)
    found = compare_fronts(trials, hours, "base", Reference(0.1, 10.0, ""))
    runs = found.runs.set_index(["search", "seed"])["hypervolume"]
    diffs = runs["other"] - runs["base"]
    assert found.differences["other"]["hypervolume"].diff == pytest.approx(diffs.mean())
    assert found.differences["other"]["hypervolume"].p == pytest.approx(stats.ttest_rel(runs["other"], runs["base"]).pvalue)
    assert found.differences["other"]["hypervolume"].test == "paired"
    assert all(found.curves[key][-1] == pytest.approx(runs[key]) for key in found.curves)  # the last step is the final front


CELLS = """\
name: {name}
dataset: {{name: digits, input_size: 8, subset: 300, validation_split: 0.3}}
model: {{family: cells, blocks: 2, stages: 2, cells_per_stage: 1, filters: 4}}
training: {{learning_rate: 0.05, batch_size: 32, epochs: 1, save_models: none}}
search: {{strategy: {strategy}, objectives: [val_accuracy, {cost}], population_size: 2, max_trials: 3}}
tracking: {{latency_calls: 3}}
"""
STUDY = """\
name: tiny_fronts
searches: [nsga2.yaml, random.yaml]
seeds: [1, 2]
fronts: {question: Does NSGA-II find a better accuracy-latency trade-off than random search?, baseline: random.yaml}
"""


def make_fronts_study(folder, cost="latency_ms", study=STUDY):
    write(folder / "nsga2.yaml", CELLS.format(name="nsga2", strategy="nsga2", cost=cost))
    write(folder / "random.yaml", CELLS.format(name="random", strategy="random", cost="latency_ms"))
    write(folder / "study.yaml", study)
    return folder


def brute_volume(accuracy, cost, reference):
    """The dominated area counted on a fine grid of the box: another way to the same number."""
    xs = np.linspace(0, reference.cost, 801)[1:] - reference.cost / 1600
    ys = np.linspace(reference.accuracy, 1, 801)[1:] - (1 - reference.accuracy) / 1600
    grid_x, grid_y = np.meshgrid(xs, ys)
    covered = np.zeros_like(grid_x, dtype=bool)
    for a, c in zip(accuracy, cost):
        covered |= (grid_x >= c) & (grid_y <= a)
    return covered.mean()


def test_a_pareto_study_runs_its_searches_in_turn_and_compares_their_fronts(tmp_path):
    folder = make_fronts_study(tmp_path / "s")
    store = tmp_path / "store"
    uri = f"sqlite:///{store / 'mlflow.db'}"
    result = runner.invoke(app, ["study", str(folder), "--tracking-uri", uri, "--tuner-dir", str(store / "tuner")])
    assert result.exit_code == 0, result.output
    said = "".join(result.output.split())  # the console wraps its lines at the terminal's width
    assert "re-timingthe12trials'architectures" in said and said.endswith("results/fronts.md)")
    out = folder / "results"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("study-tiny_fronts-search")
    parents = [r for r in client.search_runs([experiment.experiment_id], f"tags.`{ROLE_TAG}` = '{SEARCH_ROLE}'", order_by=["attributes.start_time ASC"])]
    assert [r.data.params["space"] for r in parents] == ["nsga2-seed1", "random-seed1", "random-seed2", "nsga2-seed2"], "the order turns each seed"

    trials = pd.read_csv(out / "front_trials.csv")
    found = json.loads((out / "fronts.json").read_text())
    assert len(trials) == 12 and (trials["judged_cost"] > 0).all() and trials["judged_cost"].notna().all()
    for row in trials.itertuples():  # what is judged is what the search logged
        logged = client.get_run(row.run_id).data.metrics
        assert (row.test_accuracy, row.val_accuracy, row.cost) == pytest.approx(
            (logged["test_accuracy"], logged["best_val_accuracy"], logged["latency_ms"]))
    seed1 = trials[trials["seed"] == 1]
    shared = set(seed1.loc[seed1["search"] == "nsga2.yaml", "architecture"]) & set(seed1.loc[seed1["search"] == "random.yaml", "architecture"])
    assert len(shared) >= 2, "both searches draw the same first population"
    reference = Reference(found["reference"]["accuracy"], found["reference"]["cost"], "")
    assert reference.accuracy == 0.1
    medians = seed1[seed1["architecture"].isin(shared)].groupby("architecture")["judged_cost"].median()
    assert reference.cost == pytest.approx(1.1 * medians.max())
    for run in found["runs"]:
        mine = trials[(trials["search"] == run["search"]) & (trials["seed"] == run["seed"])]
        front = [r for r in mine.itertuples() if not any(
            o.val_accuracy >= r.val_accuracy and o.cost <= r.cost and (o.val_accuracy > r.val_accuracy or o.cost < r.cost) for o in mine.itertuples())]
        assert run["front"] == len(front)
        volume = brute_volume([r.test_accuracy for r in front], [r.judged_cost for r in front], reference)
        assert run["hypervolume"] == pytest.approx(volume, abs=0.01)
    by_seed = pd.DataFrame(found["runs"]).pivot(index="seed", columns="search", values="hypervolume")
    difference = found["differences"]["nsga2.yaml"]["hypervolume"]
    assert difference["diff"] == pytest.approx((by_seed["nsga2.yaml"] - by_seed["random.yaml"]).mean())
    assert difference["n"] == 2 and found["verdicts"]["nsga2.yaml"]
    page = (out / "fronts.md").read_text()
    assert "# Fronts: Does NSGA-II find a better accuracy-latency trade-off" in page and "| random.yaml | 2 |" in page
    assert (out / "fronts.png").read_bytes()[:4] == b"\x89PNG" and (out / "searches.md").is_file()
    record = json.loads((out / "record.json").read_text())
    assert [s["seed"] for s in record["searches"]] == [1, 1, 2, 2] and record["replicates"] == []


@pytest.mark.parametrize(
    "study, cost, message",
    [
        (STUDY.replace("baseline: random.yaml", "baseline: other.yaml"), "latency_ms", "fronts.baseline: 'other.yaml' is not one of the study's searches"),
        (STUDY, "params", "fronts: the searches minimise different costs (latency_ms, params)"),
        (STUDY.replace("[nsga2.yaml, random.yaml]", "[random.yaml]"), "latency_ms", "a front comparison needs two searches or more"),
    ],
)
def test_a_front_comparison_that_cannot_be_made_is_refused_before_anything_runs(tmp_path, study, cost, message):
    folder = make_fronts_study(tmp_path / "s", cost, study)
    result = runner.invoke(app, ["study", str(folder), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "mlflow.db").exists() and not (folder / "results").exists()


def test_two_searches_of_one_name_are_refused(tmp_path):
    from search.spec.study import load_study

    folder = make_fronts_study(tmp_path / "s")
    write(folder / "random.yaml", CELLS.format(name="nsga2", strategy="random", cost="latency_ms"))
    with pytest.raises(SpaceError, match="searches: each search needs its own `name`.*nsga2 is used twice"):
        load_study(folder)


def test_a_front_comparison_needs_two_objectives(tmp_path):
    from search.spec.study import load_study

    folder = make_fronts_study(tmp_path / "s")
    write(folder / "random.yaml", CELLS.format(name="random", strategy="random", cost="x").replace("objectives: [val_accuracy, x], ", ""))
    with pytest.raises(SpaceError, match=r"search.objectives: a study's `fronts` compares searches for \[val_accuracy, COST\]"):
        load_study(folder)
