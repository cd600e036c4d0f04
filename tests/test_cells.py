"""NASNet-style cells: genotypes as text, every sampled cell builds, and the evolution oracle's rules."""

import random

import keras
import keras_tuner as kt
import numpy as np
import pytest

from search.engine.evolution import RegularizedEvolutionOracle
from search.engine.hypermodel import declare
from search.errors import GenotypeError
from search.models.registry import build_model
from search.spec.genotypes import CELL_KINDS, OPS, Block, Genotype, parse_genotype, random_genotype
from search.spec.schema import Space

CELL_SPACE = {
    "name": "cells",
    "dataset": {"name": "digits", "input_size": 8},
    "model": {"family": "cells", "blocks": 3, "cells_per_stage": 1, "filters": 4},
    "search": {"strategy": "evolution", "max_trials": 30, "population_size": 5, "sample_size": 5},
}


def test_genotype_text_round_trips_and_names_its_mistakes():
    genotype = random_genotype(4, OPS, random.Random(3))
    assert parse_genotype(str(genotype)) == genotype
    assert str(genotype).startswith("normal: ") and "; reduce: " in str(genotype)
    for text, fragment in [
        ("normal: sep3x3(0)+max3x3(1)", "the reduce cell is missing"),
        ("normal: sep3x3(0)+max3x3(2); reduce: identity(0)+identity(1)", "normal block 1: state 2 does not exist yet"),
        ("normal: sep3x3(0)+max3x3(1); reduce: identity(0)+conv(1)", "reduce block 1: unknown op 'conv'"),
        ("normal: sep3x3(0); reduce: identity(0)+identity(1)", "normal block 1: expected 'op(state)+op(state)'"),
        ("cell: sep3x3(0)+max3x3(1)", "expected 'normal: ...; reduce: ...'"),
    ]:
        with pytest.raises(GenotypeError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
            parse_genotype(text)


def test_the_output_concatenates_exactly_the_blocks_no_block_reads():
    genotype = parse_genotype("normal: sep3x3(0)+sep3x3(1), max3x3(2)+identity(1), avg3x3(0)+dil3x3(1); reduce: identity(0)+identity(1)")
    assert Genotype.unused(genotype.normal) == [3, 4]  # state 2 feeds block 2
    assert Genotype.unused(genotype.reduce) == [2]


def _covering_genotypes() -> list[Genotype]:
    """Two genotypes that between them put every op, in both cells, on a cell input and on a block's output,
    and end each kind of cell both in one block (a chain) and in a concatenation of eight (side by side)."""
    last = len(OPS) - 1
    chain = (  # block b applies OPS[b] to a cell input and OPS[b - 1] to block b-1's output; one more block, OPS[-1] to the 8th's
        Block((0, 1), (OPS[0], OPS[last])),
        *(Block((b % 2, b + 1), (OPS[b], OPS[b - 1])) for b in range(1, len(OPS))),
        Block((len(OPS) + 1, 0), (OPS[last], "identity")),
    )
    side_by_side = tuple(Block((b % 2, (b + 1) % 2), (OPS[b], OPS[(b + 1) % len(OPS)])) for b in range(len(OPS)))
    return [Genotype(normal=chain, reduce=side_by_side), Genotype(normal=side_by_side, reduce=chain)]


def _roles(genotype: Genotype) -> set[tuple[str, str, str]]:
    """(cell, op, what it reads: a cell input or a block's output) for every op of the genotype."""
    return {
        (kind, op, "input" if state < 2 else "block")
        for kind in CELL_KINDS
        for block in genotype.cell(kind)
        for op, state in zip(block.ops, block.inputs)
    }


def test_many_random_cells_build_into_models_that_run(tmp_path):
    """Every sampled cell, with any op subset, N and F, must build: strides and projections where shapes differ.
    Two written genotypes make sure of what sampling might miss: every op in every role, in both cells."""
    rng = random.Random(11)
    batch = np.random.RandomState(0).normal(size=(2, 12, 12, 1)).astype("float32")
    cases = [(genotype, 2, 2, 2) for genotype in _covering_genotypes()]  # N = 2 and 2 stages: every kind of cell input
    for _ in range(12):
        ops = rng.sample(OPS, rng.randint(1, len(OPS)))
        genotype = random_genotype(rng.randint(1, 5), ops, rng)
        cases.append((genotype, rng.randint(1, 2), rng.choice([2, 4]), rng.randint(1, 3)))
    roles, endings = set(), set()
    for genotype, cells_per_stage, filters, stages in cases:
        roles |= _roles(genotype)
        endings |= {(kind, len(Genotype.unused(genotype.cell(kind))) > 1) for kind in CELL_KINDS}
        keras.backend.clear_session()
        model = build_model(
            "cells", input_shape=(12, 12, 1), num_classes=10, genotype=str(genotype),
            cells_per_stage=cells_per_stage, filters=filters, stages=stages,
        )
        out = model(batch, training=True)
        assert out.shape == (2, 10) and np.allclose(np.sum(out, axis=1), 1.0, atol=1e-4), str(genotype)
    assert roles == {(kind, op, reads) for kind in CELL_KINDS for op in OPS for reads in ("input", "block")}
    assert endings == {(kind, concatenated) for kind in CELL_KINDS for concatenated in (False, True)}
    assert {stages for *_, stages in cases} == {1, 2, 3} and {n for _, n, _, _ in cases} == {1, 2}


def test_reduction_cells_halve_the_side_and_normal_cells_keep_it():
    model = build_model("cells", input_shape=(16, 16, 1), num_classes=10, cells_per_stage=1, filters=4, stages=3,
                        genotype="normal: identity(1)+sep3x3(0); reduce: max3x3(0)+dil3x3(1), conv1x7_7x1(2)+identity(0)")
    sides = {layer.name: layer.output.shape[1] for layer in model.layers if layer.name.endswith(("_add", "_out"))}
    assert sides["stage1_normal1_b1_add"] == 16
    assert sides["stage2_reduce_b2_add"] == 8 and sides["stage2_normal1_b1_add"] == 8
    assert sides["stage3_reduce_b1_add"] == 4


def test_a_searched_cell_space_declares_one_choice_per_input_and_op_and_returns_a_genotype():
    space = Space.model_validate(CELL_SPACE)
    hp = kt.HyperParameters()
    values = declare(hp, space)
    cell_names = [name for name in hp.values if name.startswith(("normal_", "reduce_"))]
    assert len(cell_names) == 2 * 3 * 4  # two cells x three blocks x (two inputs + two ops)
    genotype = parse_genotype(values["genotype"])
    assert len(genotype.normal) == 3 and not any(name in values for name in cell_names)
    assert space.varying_names() == ["genotype"] and "searched cells (3 blocks, 8 ops" in space.describe()


def test_a_searched_cell_net_is_built_with_the_spaces_stages():
    """`stages` is a setting, not an axis: the builder takes it from the space (it was once left at 3)."""
    from search.models.registry import build_candidate
    from search.spec.schema import model_values

    for stages in (1, 2):
        space = Space.model_validate(CELL_SPACE | {"model": CELL_SPACE["model"] | {"stages": stages}})
        values = declare(kt.HyperParameters(), space)
        keras.backend.clear_session()
        model = build_candidate(space.model, model_values(values), input_shape=(8, 8, 1), num_classes=10)
        built = {layer.name.split("_")[0] for layer in model.layers if layer.name.startswith("stage")}
        assert built == {f"stage{s}" for s in range(1, stages + 1)}


def _oracle(tmp_path, space: Space, seed: int = 5) -> RegularizedEvolutionOracle:
    search = space.search
    oracle = RegularizedEvolutionOracle(
        objective=kt.Objective("val_accuracy", "max"), max_trials=search.max_trials, seed=seed,
        population_size=search.population_size, sample_size=search.sample_size,
    )
    hp = kt.HyperParameters()
    declare(hp, space)
    oracle.update_space(hp)
    oracle._set_project_dir(str(tmp_path), f"evolution{seed}")
    return oracle


def _run(oracle, fitness, trials: int) -> list:
    """Ask the oracle for `trials` trials one after another and report `fitness(values)` for each."""
    done = []
    for _ in range(trials):
        trial = oracle.create_trial("worker")
        oracle.update_trial(trial.trial_id, {"val_accuracy": fitness(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        done.append(trial)
    return done


def _distance(a: dict, b: dict) -> int:
    return sum(a[k] != b[k] for k in a)


def test_evolution_starts_random_then_mutates_one_op_or_input_of_the_best_of_a_sample(tmp_path):
    space = Space.model_validate(CELL_SPACE)
    oracle = _oracle(tmp_path, space)
    fitness = lambda values: sum(v == "sep3x3" for v in values.values()) + random.Random(str(values)).random() * 0.1  # noqa: E731
    trials = _run(oracle, fitness, 30)
    values = [t.hyperparameters.values for t in trials]
    assert min(_distance(values[i], values[j]) for i in range(5) for j in range(i)) > 1  # the first P are random draws
    for i in range(5, 30):
        population = values[i - 5 : i]  # aging: the 5 most recently finished
        best = max(population, key=fitness)  # sample size = population: the parent is always its best
        assert _distance(values[i], best) == 1, i
    assert fitness(values[-1]) > max(fitness(v) for v in values[:5])  # selection climbs


def test_aging_lets_even_the_best_member_die(tmp_path):
    space = Space.model_validate(CELL_SPACE)
    oracle = _oracle(tmp_path, space)
    first = {}
    fitness = lambda values: 100.0 if values == first else 0.0  # noqa: E731
    trial = _run(oracle, lambda values: 0.0, 1)[0]
    first.update(trial.hyperparameters.values)
    oracle.trials[trial.trial_id].score = 100.0
    _run(oracle, fitness, 10)
    assert trial.trial_id not in [t.trial_id for t in oracle.population()]
    assert len(oracle.population()) == 5


def test_evolution_is_a_function_of_its_seed_and_history(tmp_path):
    space = Space.model_validate(CELL_SPACE)

    def score(values):
        return random.Random(str(sorted(values.items()))).random()

    runs = [[t.hyperparameters.values for t in _run(_oracle(tmp_path / str(i), space, seed), score, 12)] for i, seed in enumerate((5, 5, 6))]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_evolution_also_searches_ordinary_axes(tmp_path):
    space = Space.model_validate({
        "name": "grid", "dataset": {"name": "digits", "input_size": 8},
        "model": {"family": "resnet", "depth": [8, 14, 20], "bn": ["none", "post", "pre"], "residual": [True, False]},
        "search": {"strategy": "evolution", "max_trials": 12, "population_size": 4, "sample_size": 2},
    })
    oracle = _oracle(tmp_path, space)
    trials = _run(oracle, lambda values: values["depth"] / 20, 12)
    keys = [tuple(sorted(t.hyperparameters.values.items())) for t in trials]
    assert len(set(keys)) == 12  # no candidate twice while untried ones remain
