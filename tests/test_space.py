"""The space-file schema and reader: valid files load, every kind of bad input is named precisely."""

import json
import subprocess
import sys
from itertools import product

import pytest
from conftest import REPO, TINY_SPACE, write

from search.errors import SpaceError
from search.spec.reader import load_space
from search.spec.schema import Space


@pytest.mark.parametrize("path", sorted((REPO / "spaces").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_spaces_are_valid(path):
    space = load_space(path)
    assert space.grid_size() >= 2, "a shipped space compares at least two candidates"


def test_scalar_axis_is_a_fixed_one_element_list(tmp_path):
    space = load_space(write(tmp_path / "s.yaml", TINY_SPACE))
    assert space.model.depth == [8]
    assert space.model.residual == [False, True]
    assert space.varying_axes() == {"residual": [False, True]}
    assert space.settings()["input_size"] == 8


def test_candidate_index_enumerates_the_grid_in_product_order(tmp_path):
    text = TINY_SPACE.replace("depth: 8", "depth: [8, 14]").replace("learning_rate: 0.05", "learning_rate: [0.1, 0.01]")
    space = load_space(write(tmp_path / "s.yaml", text))
    axes = space.axes()
    expected = [dict(zip(axes, combo)) for combo in product(*axes.values())]
    assert [space.candidate(i) for i in range(space.grid_size())] == expected
    assert space.grid_size() == 8


def test_settings_names_do_not_collide_with_axis_names(tmp_path):
    space = load_space(write(tmp_path / "s.yaml", TINY_SPACE))
    assert not set(space.settings()) & set(space.axes())


def error_for(tmp_path, text: str, name: str = "bad.yaml") -> str:
    path = write(tmp_path / name, text)
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    message = str(caught.value)
    assert message.startswith(str(path)), "the message names the file"
    return message


BAD = {
    "unknown_key": (
        TINY_SPACE.replace("  width: 0.5", "  widht: 0.5"),
        ["line 10", "model.widht", "unknown key", "width"],
    ),
    "unknown_top_level_key": (TINY_SPACE + "extra: 1\n", ["extra", "unknown key", "dataset"]),
    "wrong_type": (TINY_SPACE.replace("epochs: 2", "epochs: many"), ["training.epochs", "integer", "'many'"]),
    "empty_choices": (TINY_SPACE.replace("residual: [false, true]", "residual: []"), ["model.residual", "at least 1"]),
    "duplicate_choices": (TINY_SPACE.replace("[false, true]", "[true, true]"), ["model.residual", "distinct"]),
    "negative_number": (TINY_SPACE.replace("batch_size: 32", "batch_size: -32"), ["training.batch_size", "greater than or equal to 1"]),
    "absurd_number": (TINY_SPACE.replace("epochs: 2", "epochs: 1000000"), ["training.epochs", "less than or equal to 10000"]),
    "unknown_dataset": (TINY_SPACE.replace("name: digits", "name: imagenet"), ["dataset.name", "'digits'", "'cifar10'"]),
    "unknown_family": (TINY_SPACE.replace("family: resnet", "family: alexnet"), ["model.family", "'vgg', 'resnet' or 'cells'", "alexnet"]),
    "bad_depth": (TINY_SPACE.replace("depth: 8", "depth: 21"), ["model.depth", "6n+2"]),
    "bad_vgg_config": (
        "name: v\nmodel: {family: vgg, config: [A, F]}\n",
        ["model.config[1]", "'A-LRN'", "'F'"],
    ),
    "input_too_small": (
        "name: v\ndataset: {input_size: 16}\nmodel: {family: vgg, config: [A, D]}\n",
        ["dataset.input_size", "32x32", "config A"],
    ),
    "missing_name": ("model: {family: vgg}\n", ["name", "Field required"]),
    "seed_zero": (TINY_SPACE.replace("seed: 7", "seed: 0"), ["search.seed", "greater than or equal to 1"]),
    "yaml_syntax": ("name: t\nmodel: {family: vgg\n", ["invalid YAML", "line 3"]),
    "aliases": ("name: &n t\nmodel: {family: vgg}\ntracking: {experiment: *n}\n", ["aliases", "not allowed"]),
    "python_tag": ("name: t\nmodel: !!python/object/apply:os.system [echo hi]\n", ["python/object", "not allowed"]),
    "duplicate_key": ("name: t\nname: u\nmodel: {family: vgg}\n", ["line 2", "name", "given twice"]),
    "empty_file": ("", ["empty"]),
    "not_a_mapping": ("- a\n- b\n", ["mapping"]),
    "missing_npz": (
        "name: t\ndataset: {name: npz, path: nothere.npz}\nmodel: {family: resnet, depth: 8}\n",
        ["dataset.path", "no .npz file", "nothere.npz"],
    ),
    "npz_without_path": ("name: t\ndataset: {name: npz}\nmodel: {family: resnet, depth: 8}\n", ["dataset.path", "required"]),
    "milestones_beyond_epochs": (
        TINY_SPACE.replace("epochs: 2", "epochs: 2\n  schedule: step\n  milestones: [5]"),
        ["training.milestones", "below training.epochs"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_key_and_what_is_allowed(tmp_path, case):
    text, fragments = BAD[case]
    message = error_for(tmp_path, text)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_binary_directory_missing_and_huge_files(tmp_path):
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    with pytest.raises(SpaceError, match="binary"):
        load_space(binary)
    with pytest.raises(SpaceError, match="is a directory"):
        load_space(tmp_path)
    with pytest.raises(SpaceError, match="no such file"):
        load_space(tmp_path / "absent.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: t\n" + "# padding\n" * 200_000)
    with pytest.raises(SpaceError, match="at most 1,000,000"):
        load_space(huge)


def test_image_folder_without_images_is_refused(tmp_path):
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "images" / "b").mkdir()
    message = error_for(tmp_path, "name: t\ndataset: {name: folder, path: images}\nmodel: {family: resnet, depth: 8}\n")
    assert "dataset.path" in message and "sub-folder per class" in message


def test_json_schema_describes_axes_as_value_or_list():
    schema = Space.model_json_schema()
    json.dumps(schema)  # serialisable
    vgg = schema["$defs"]["VGGModel"]["properties"]["config"]
    assert vgg["anyOf"][0]["enum"] == ["A", "A-LRN", "B", "C", "D", "E"]
    assert vgg["anyOf"][1]["type"] == "array"


def test_validation_imports_no_tensorflow(tiny_space):
    code = (
        "import sys; from search.spec.reader import load_space; "
        f"load_space({str(tiny_space)!r}); "
        "from search.cli import app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'mlflow')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
