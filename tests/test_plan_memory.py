"""The memory estimate: parameters counted without building match the built models; spaces too large
for a 24 GiB machine are refused by `plan` at once, naming the key to change; the shipped spaces pass."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from search.cli import app
from search.errors import ResourceError
from search.spec.reader import load_space

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30
MACHINE = 24 * GIB  # the machines this project runs on

GENOTYPE = "normal: sep3x3(1)+identity(0), max3x3(0)+sep5x5(2); reduce: avg3x3(0)+sep7x7(1), identity(2)+max3x3(1)"
OTHER_GENOTYPE = "normal: conv1x7_7x1(1)+dil3x3(0), avg3x3(2)+sep7x7(1); reduce: dil3x3(0)+conv1x7_7x1(1), identity(0)+dil3x3(2)"


@pytest.mark.parametrize(
    "family, values, side",
    [
        ("vgg", dict(config="A-LRN", width=0.25, bn="none", head="fc", fc_units=64), 32),
        ("vgg", dict(config="C", width=0.25, bn="pre", conv="separable", residual=True, se=True), 32),
        ("vgg", dict(config="E", width=0.125, kernel=5), 32),
        ("resnet", dict(depth=20, bn="pre", se=True), 32),
        ("resnet", dict(depth=18, width=0.5, conv="separable", residual=False, bn="none"), 64),
        ("resnet", dict(depth=14, head="fc", fc_units=32, dropout=0.5), 16),
        ("cells", dict(genotype=GENOTYPE, filters=8, cells_per_stage=2), 16),
        ("cells", dict(genotype=OTHER_GENOTYPE, filters=8, cells_per_stage=1), 16),
        ("xception", dict(width=0.25), 32),
        ("xception", dict(width=0.125, bn="post", se=True, kernel=5), 24),
        ("xception", dict(width=0.125, bn="none", conv="dense", kernel=1, dropout=0.0), 16),
        ("keras_app", dict(architecture="MobileNetV2"), 32),
    ],
)
def test_counted_parameters_equal_the_built_models(family, values, side):
    import numpy as np

    from search.models.budget import COUNTERS
    from search.models.registry import build_model
    from search.spec.families import FAMILIES

    built = build_model(family, input_shape=(side, side, 3), num_classes=10, **values)
    model = FAMILIES[family].model_validate({"family": family, **values})
    counted = COUNTERS[family](model, {k: v[0] for k, v in model.axes().items()}, (side, side, 3), 10)
    assert counted.params == built.count_params()
    outputs = sum(int(np.prod(layer.output.shape[1:])) for layer in built.layers[1:])
    assert outputs <= counted.activations <= 2 * outputs  # every layer output, and the temporaries of a few


def plan(tmp_path, text: str, monkeypatch, available: int = MACHINE):
    monkeypatch.setattr("search.orchestration.plan.available_memory", lambda: available)
    monkeypatch.setattr("search.orchestration.plan.gpu_memory", lambda: None)
    monkeypatch.setattr("search.data.memory.available_memory", lambda: available)
    space = tmp_path / "space.yaml"
    space.write_text(text)
    return space, CliRunner().invoke(app, ["plan", str(space)])


TOO_BIG = {
    "fc_head": ("dataset: {name: digits, input_size: 32}\nmodel: {family: vgg, config: A, head: fc, fc_units: 65536}\n",
                "model.fc_units: the largest candidate (vgg"),
    "cells": ("dataset: {name: digits, input_size: 32}\nmodel: {family: cells, filters: 4096, cells_per_stage: 50}\n"
              "search: {strategy: random, max_trials: 2}\n", "model.filters / model.cells_per_stage: the largest candidate"),
    "deep_wide_resnet": ("dataset: {name: digits, input_size: 256}\nmodel: {family: resnet, depth: 1202, width: 8}\n"
                         "training: {batch_size: 4096}\n", "dataset.input_size: the largest candidate (resnet"),
    "batch": ("dataset: {name: digits, input_size: 64}\nmodel: {family: resnet, depth: [20, 56]}\ntraining: {batch_size: [64, 8192]}\n",
              "training.batch_size: the largest candidate (resnet"),
    "input_size": ("dataset: {name: digits, input_size: 1024}\nmodel: {family: resnet, depth: 8}\n",
                   "dataset.input_size: preparing digits (1,797 images) at 1024x1024x1 takes about 28.1 GiB"),
}


@pytest.mark.parametrize("case", sorted(TOO_BIG))
def test_plan_refuses_a_space_too_big_for_the_machine(case, tmp_path, monkeypatch):
    text, fragment = TOO_BIG[case]
    space, result = plan(tmp_path, f"name: big\n{text}", monkeypatch)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"error: {space}: {fragment}" in result.output.replace("\n", "")
    assert "but 24.0 GiB is available" in result.output.replace("\n", "")


def test_the_largest_batch_that_fits_is_named(tmp_path, monkeypatch):
    _, result = plan(tmp_path, "name: big\n" + TOO_BIG["batch"][0], monkeypatch)
    fits = int(result.output.replace("\n", "").split("a batch of at most ")[1].split()[0])
    from search.orchestration.plan import memory_need

    space = load_space(tmp_path / "space.yaml")
    need = memory_need(space, available=MACHINE)
    assert need.fits(fits) and not need.fits(fits + 1)


SHIPPED = sorted(p.relative_to(REPO) for p in [*REPO.glob("spaces/*.yaml"), *REPO.glob("experiments/*/space*.yaml")])


@pytest.mark.parametrize("path", SHIPPED, ids=str)
def test_the_shipped_spaces_fit_a_24_gib_machine(path, monkeypatch):
    from search.data import data_memory, describe_arrays
    from search.orchestration.plan import check_memory

    folder = (REPO / path).parent / "data" / "images"
    if "path: data/images" in (REPO / path).read_text() and not folder.is_dir():
        pytest.skip(f"{folder} (ImageNet-style images) is not on this machine")
    space = load_space(REPO / path)
    monkeypatch.setattr("search.orchestration.plan.gpu_memory", lambda: None)
    assert data_memory(describe_arrays(space.dataset), space.dataset).preparation < MACHINE
    check_memory(space, available=MACHINE)


def test_run_checks_the_prepared_data_and_names_the_batch_size():
    """What `run` calls after load_data: the search process's copy of the data is not counted twice."""
    from search.data import load_data
    from search.orchestration.plan import check_memory, memory_need

    space = load_space(REPO / "spaces" / "conv_kind.yaml")
    data = load_data(space.dataset)
    check_memory(space, data, available=MACHINE)
    before, after = memory_need(space, available=MACHINE), memory_need(space, data, available=MACHINE)
    assert after.data < before.data
    with pytest.raises(ResourceError, match=r"^training\.batch_size: .* but 700 MiB is available; a batch of at most \d+ fits"):
        check_memory(space, data, available=700 * 2**20)


def test_a_normal_space_is_planned(tmp_path, monkeypatch):
    space, result = plan(tmp_path, "name: ok\ndataset: {name: digits, input_size: 8}\nmodel: {family: resnet, depth: 8, width: 0.5}\n", monkeypatch)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("case", ["fc_head", "batch"])
def test_run_refuses_a_space_too_big_for_the_machine_before_anything_is_written(case, tmp_path, monkeypatch):
    text, fragment = TOO_BIG[case]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr("search.orchestration.plan.available_memory", lambda: MACHINE)
    monkeypatch.setattr("search.orchestration.plan.gpu_memory", lambda: None)
    space = tmp_path / "space.yaml"
    space.write_text(f"name: big\n{text}")
    result = CliRunner().invoke(app, ["run", str(space)])
    assert result.exit_code == 2, result.output
    assert f"error: {space}: {fragment}" in result.output.replace("\n", "") and "Traceback" not in result.output
    assert list(cwd.iterdir()) == [], "no MLflow store, no tuner folder"
