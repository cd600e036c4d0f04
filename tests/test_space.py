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
    "wrong_type": (TINY_SPACE.replace("epochs: 2", "epochs: many"), ["training.epochs", "expected a whole number, got 'many'"]),
    "empty_choices": (TINY_SPACE.replace("residual: [false, true]", "residual: []"), ["model.residual", "at least 1"]),
    "duplicate_choices": (TINY_SPACE.replace("[false, true]", "[true, true]"), ["model.residual", "distinct"]),
    "negative_number": (TINY_SPACE.replace("batch_size: 32", "batch_size: -32"), ["training.batch_size", "must be at least 1, got -32"]),
    "absurd_number": (TINY_SPACE.replace("epochs: 2", "epochs: 1000000"), ["training.epochs", "must be at most 10,000, got 1000000"]),
    "unknown_dataset": (TINY_SPACE.replace("name: digits", "name: imagenet"), ["dataset.name", "'digits'", "'cifar10'"]),
    "unknown_family": (TINY_SPACE.replace("family: resnet", "family: alexnet"), ["model.family", "expected 'vgg', 'resnet', 'cells', 'xception' or 'keras_app', got 'alexnet'"]),
    "bad_depth": (TINY_SPACE.replace("depth: 8", "depth: 21"), ["model.depth", "6n+2"]),
    "bad_vgg_config": (
        "name: v\nmodel: {family: vgg, config: [A, F]}\n",
        ["model.config[1]", "'A-LRN'", "'F'"],
    ),
    "input_too_small": (
        "name: v\ndataset: {input_size: 16}\nmodel: {family: vgg, config: [A, D]}\n",
        ["dataset.input_size", "32x32", "config A"],
    ),
    "missing_name": ("model: {family: vgg}\n", ["name: required: a name of letters, digits"]),
    "seed_zero": (TINY_SPACE.replace("seed: 7", "seed: 0"), ["search.seed", "must be at least 1, got 0"]),
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
    "warmup_with_plateau": (TINY_SPACE.replace("epochs: 2", "epochs: 4\n  schedule: plateau\n  warmup: 1"), ["training.warmup", "plateau"]),
    "warmup_as_long_as_training": (TINY_SPACE.replace("epochs: 2", "epochs: 2\n  warmup: 2"), ["training.warmup", "fewer than training.epochs (2)"]),
    "pad_into_a_smaller_frame": (
        "name: t\ndataset: {name: fashion_mnist, input_size: 24, resize: pad}\nmodel: {family: resnet, depth: 8}\n",
        ["dataset.resize", "at least fashion_mnist's 28x28, not 24", "'bilinear'"],
    ),
    "pad_a_folder": ("name: t\ndataset: {name: folder, path: ., resize: pad}\nmodel: {family: resnet, depth: 8}\n", ["dataset.resize", "a folder's images"]),
    "unknown_resize": (TINY_SPACE.replace("input_size: 8", "input_size: 8\n  resize: crop"), ["dataset.resize", "'bilinear' or 'pad'", "'crop'"]),
    "nsga2_with_one_objective": (TINY_SPACE.replace("strategy: grid", "strategy: nsga2"), ["search.objectives", "nsga2 needs at least two"]),
    "objectives_on_a_one_objective_strategy": (
        TINY_SPACE.replace("strategy: grid", "strategy: grid\n  objectives: [val_accuracy, params]"),
        ["search.objectives", "grid optimises one objective; several need nsga2 or random"],
    ),
    "a_cost_first": (
        TINY_SPACE.replace("strategy: grid", "strategy: nsga2\n  objectives: [params, val_accuracy]"),
        ["search.objectives", "the first is what trials are trained and selected for", "'params' is not"],
    ),
    "an_accuracy_as_a_cost": (
        TINY_SPACE.replace("strategy: grid", "strategy: random\n  objectives: [val_accuracy, accuracy]"),
        ["search.objectives", "after the first, costs to minimise", "not 'accuracy'"],
    ),
    "objective_and_objectives_disagree": (
        TINY_SPACE.replace("strategy: grid", "strategy: nsga2\n  objective: val_loss\n  objectives: [val_accuracy, flops]"),
        ["search.objective", "'val_loss', but search.objectives starts with 'val_accuracy'"],
    ),
    "latency_objective_unmeasured": (
        TINY_SPACE.replace("strategy: grid", "strategy: nsga2\n  objectives: [val_accuracy, latency_ms]"),
        ["tracking.latency_calls", "0, but search.objectives needs the latency measured"],
    ),
    "unknown_objective": (
        TINY_SPACE.replace("strategy: grid", "strategy: nsga2\n  objectives: [val_accuracy, speed]"),
        ["search.objectives[1]", "'speed'"],
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


YAML_12 = {  # YAML 1.2 core schema, not PyYAML's YAML 1.1
    "search: {seed: 010}": ("search", "seed", 10),  # decimal, not octal
    "search: {seed: 0o10}": ("search", "seed", 8),
    "search: {seed: 0x10}": ("search", "seed", 16),
    "search: {seed: +7}": ("search", "seed", 7),
    "training: {learning_rate: 1e-3}": ("training", "learning_rate", [0.001]),  # text in YAML 1.1
    "training: {learning_rate: 1}": ("training", "learning_rate", [1.0]),  # an integer is a number
    "tracking: {experiment: yes}": ("tracking", "experiment", "yes"),
    "tracking: {experiment: off}": ("tracking", "experiment", "off"),
    "tracking: {experiment: 2001-12-14}": ("tracking", "experiment", "2001-12-14"),  # no timestamps
    "tracking: {experiment: 1:0:0}": ("tracking", "experiment", "1:0:0"),  # no base 60
    "tracking: {experiment: café ☕}": ("tracking", "experiment", "café ☕"),  # printable unicode is fine
}


@pytest.mark.parametrize("line", sorted(YAML_12))
def test_scalars_are_read_as_yaml_1_2(tmp_path, line):
    section, key, expected = YAML_12[line]
    space = load_space(write(tmp_path / "s.yaml", "name: t\nmodel: {family: resnet, depth: 8}\n" + line + "\n"))
    assert getattr(getattr(space, section), key) == expected


@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
def test_the_core_schema_booleans_are_booleans(tmp_path, value):
    space = load_space(write(tmp_path / "s.yaml", f"name: t\nmodel: {{family: resnet, depth: 8, se: {value}}}\n"))
    assert space.model.se == [True]


def test_a_bom_and_crlf_line_ends_are_text_like_any_other(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + TINY_SPACE.replace("\n", "\r\n").encode())
    assert load_space(path).model.residual == [False, True]


FLOATS = {  # every float field, each bounded on both sides: NaN must not slip through a comparison
    "learning_rate": "training: {learning_rate: VALUE}",
    "momentum": "training: {momentum: VALUE}",
    "weight_decay": "training: {weight_decay: VALUE}",
    "validation_split": "dataset: {validation_split: VALUE}",
    "augmentation.noise": "dataset: {augmentation: {noise: VALUE}}",
    "corruption.scale": "dataset: {corruption: {scale: VALUE}}",
    "corruption.noise": "dataset: {corruption: {noise: VALUE}}",
    "width": "model: {family: resnet, depth: 8, width: VALUE}",
    "dropout": "model: {family: resnet, depth: 8, dropout: VALUE}",
    "bn_momentum": "model: {family: resnet, depth: 8, bn_momentum: VALUE}",
}


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", "1e400"])
@pytest.mark.parametrize("field", sorted(FLOATS))
def test_no_float_field_takes_nan_or_infinity(tmp_path, field, value):
    text = FLOATS[field].replace("VALUE", value)
    model = "" if text.startswith("model") else "model: {family: resnet, depth: 8}\n"
    message = error_for(tmp_path, f"name: t\n{model}{text}\n")
    assert f"{field}: expected a finite number (not .nan or .inf), got " in message


INTEGERS = {  # every integer field: a number of 80 digits is refused at its key, never used
    "input_size": "dataset: {input_size: VALUE}",
    "subset": "dataset: {subset: VALUE}",
    "crop_padding": "dataset: {augmentation: {crop_padding: VALUE}}",
    "epochs": "training: {epochs: VALUE}",
    "batch_size": "training: {batch_size: VALUE}",
    "plateau_patience": "training: {plateau_patience: VALUE}",
    "milestones[0]": "training: {schedule: step, milestones: [VALUE]}",
    "early_stopping.patience": "training: {early_stopping: {patience: VALUE}}",
    "max_trials": "search: {max_trials: VALUE}",
    "repeats": "search: {repeats: VALUE}",
    "convergence.window": "training: {convergence: {window: VALUE}}",
    "seed": "search: {seed: VALUE}",
    "hyperband_factor": "search: {hyperband_factor: VALUE}",
    "population_size": "search: {population_size: VALUE}",
    "sample_size": "search: {sample_size: VALUE}",
    "max_consecutive_failed_trials": "search: {max_consecutive_failed_trials: VALUE}",
    "max_params": "search: {max_params: VALUE}",
    "depth": "model: {family: resnet, depth: VALUE}",
    "fc_units": "model: {family: vgg, fc_units: VALUE}",
    "kernel": "model: {family: vgg, kernel: VALUE}",
    "blocks": "model: {family: cells, blocks: VALUE}",
    "stages": "model: {family: cells, stages: VALUE}",
    "cells_per_stage": "model: {family: cells, cells_per_stage: VALUE}",
    "filters": "model: {family: cells, filters: VALUE}",
}


@pytest.mark.parametrize("field", sorted(INTEGERS))
def test_no_integer_field_takes_a_number_of_80_digits(tmp_path, field):
    text = INTEGERS[field].replace("VALUE", "9" * 80)
    model = "" if text.startswith("model") else "model: {family: resnet, depth: 8}\n"
    message = error_for(tmp_path, f"name: t\n{model}{text}\n")
    assert f"{field}: " in message and len(message) < 400, message


def test_size_limits_take_their_bound_and_refuse_one_past_it(tmp_path):
    block = "sep3x3(0)+identity(1)"
    ten = "name: t\nmodel: {family: cells, genotype: 'normal: " + ", ".join([block] * 10) + "; reduce: " + block + "'}\n"
    assert len(load_space(write(tmp_path / "ten.yaml", ten)).model.genotype) == 1
    assert "at most 10" in error_for(tmp_path, ten.replace("normal: ", f"normal: {block}, "))
    assert load_space(write(tmp_path / "deep.yaml", "name: t\nmodel: {family: resnet, depth: 1202}\n")).model.depth == [1202]
    assert "more than 1202" in error_for(tmp_path, "name: t\nmodel: {family: resnet, depth: 1208}\n")
    choices = "name: t\nmodel: {family: resnet, depth: 8}\ntraining: {learning_rate: [%s]}\n"
    thousand = ", ".join(f"0.{i:04d}" for i in range(1, 1001))
    assert len(load_space(write(tmp_path / "c.yaml", choices % thousand)).training.learning_rate) == 1000
    assert "at most 1,000" in error_for(tmp_path, choices % (thousand + ", 0.5"))


def test_a_grid_of_more_than_10000_candidates_needs_max_trials(tmp_path):
    rates = ", ".join(f"0.{i:03d}" for i in range(1, 101))
    decays = ", ".join(f"0.{i:03d}" for i in range(0, 100))
    text = f"name: t\nmodel: {{family: resnet, depth: 8}}\ntraining: {{learning_rate: [{rates}], weight_decay: [{decays}]}}\n"
    assert load_space(write(tmp_path / "s.yaml", text)).grid_size() == 10_000
    larger = text.replace("depth: 8", "depth: [8, 14]")
    assert "search.max_trials: required for a grid of 20,000 candidates" in error_for(tmp_path, larger)
    assert load_space(write(tmp_path / "t.yaml", larger + "search: {max_trials: 50}\n")).search.max_trials == 50


def test_a_space_file_is_read_only_if_it_is_a_regular_file(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(SpaceError, match="a FIFO, not a regular file"):
        load_space(tmp_path / "fifo.yaml")  # refused at once: opening a FIFO does not wait for a writer
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    with pytest.raises(SpaceError, match="a device or socket"):
        load_space(tmp_path / "zero.yaml")


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (REPO / "experiments").glob("*/*.yaml") if p.name != "study.yaml"),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_study_space_passes_the_schema(path):
    """Strict types and YAML 1.2 change nothing the studies wrote (their data may be absent here)."""
    from search.spec.wording import validated
    from search.spec.yaml_reader import read_yaml

    assert validated(Space, path, *read_yaml(path)).name


def test_a_study_file_is_read_as_safely_as_a_space_file(tmp_path):
    from search.spec.study import load_study

    (tmp_path / "study.yaml").write_text("name: s\nspaces: " + "[" * 1000 + "]" * 1000 + "\n")
    with pytest.raises(SpaceError, match="nested more than 32 levels deep"):
        load_study(tmp_path)
    (tmp_path / "study.yaml").write_text('name: s\nspaces: ["a\\0.yaml"]\n')
    with pytest.raises(SpaceError, match=r"spaces\[0\]: must be printable text"):
        load_study(tmp_path)
    (tmp_path / "study.yaml").write_text("name: s\nspaces: [a.yaml]\nseeds: [1, 99999999999]\n")
    with pytest.raises(SpaceError, match=r"seeds\[1\]: must be at most 10,000,000, got 99999999999"):
        load_study(tmp_path)
    (tmp_path / "study.yaml").write_text("name: s\nspaces: [a.yaml]\nsaeds: [1]\n")
    with pytest.raises(SpaceError, match=r"line 3: saeds: unknown key \(did you mean 'seeds'\?\); allowed here: name, spaces"):
        load_study(tmp_path)


def test_a_long_list_of_problems_counts_them_all_and_lists_the_first_ten(tmp_path):
    from search.errors import SpaceError
    from search.spec.reader import load_space

    unknown = "\n".join(f"  typo{i}: 1" for i in range(15))
    path = tmp_path / "many.yaml"
    path.write_text(f"name: many\nmodel:\n  family: resnet\ntraining:\n{unknown}\n")
    with pytest.raises(SpaceError) as refused:
        load_space(path)
    lines = str(refused.value).splitlines()
    assert lines[0] == f"{path}: 15 problems"
    assert len([line for line in lines if "unknown key" in line]) == 10 and lines[-1] == "  - and 5 more"


@pytest.mark.parametrize(
    "dataset, fragment",
    [
        ("{name: digits, subset: 1500}", "dataset.subset: digits has 1797 training images, 1438 after the test_split of 359; subset 1500 is larger"),
        ("{name: digits, subset: 1500, test_split: 0.1}", None),  # 1617 left
        ("{name: fashion_mnist, subset: 60000}", None),  # its own test part: all 60,000 training images are left
    ],
)
def test_a_subset_counts_only_what_the_test_part_leaves(tmp_path, dataset, fragment):
    path = write(tmp_path / "space.yaml", TINY_SPACE.replace("dataset:\n  name: digits\n  input_size: 8\n  subset: 300\n  validation_split: 0.3\n", f"dataset: {dataset}\n"))
    if fragment is None:
        load_space(path)
        return
    with pytest.raises(SpaceError) as caught:
        load_space(path)
    assert fragment in str(caught.value)


# pydantic's own wording, which no message may show (tests/test_bad_spaces.py checks the corpus for the same)
PYDANTIC_PHRASES = (
    "valid dictionary", "instance of", "Input should", "pydantic", "errors.pydantic.dev", "For further information",
    "Field required", "Extra inputs", "Value error", "after validation", "String should", "List should", "Value should",
    "Unable to extract tag", "does not match any of the expected tags",
)
RESNET = "model: {family: resnet, depth: 8}\n"
# Every pydantic error type a space file can reach: (the file after `name: t`, the message's fragment).
PYDANTIC_TYPES = {
    "dict_type": None,  # no field is a plain dict: the strict models raise model_type instead
    "model_type": (RESNET + "dataset: [{name: digits}]\n",
                   "dataset: expected a mapping of dataset settings (name, path, input_size, ...), got a list [{'name': 'digits'}]"),
    "model_attributes_type": ("model: [resnet]\n", "model: expected a mapping of model settings (family: 'vgg', 'resnet', 'cells', 'xception' or 'keras_app', "
                              "then that family's keys), got a list ['resnet']"),
    "int_type": (RESNET + "training: {epochs: ten}\n", "training.epochs: expected a whole number, got 'ten'"),
    "int_from_float": None,  # strict: a float given for an integer is int_type (the message says `write 5`)
    "int_parsing": None,  # strict: text is never parsed as a number
    "float_type": (RESNET + "training: {momentum: high}\n", "training.momentum: expected a number, got 'high'"),
    "float_parsing": None,
    "finite_number": (RESNET + "training: {momentum: .nan}\n", "training.momentum: expected a finite number (not .nan or .inf), got nan"),
    "bool_type": ("model: {family: resnet, depth: 8, se: on}\n", "model.se: expected true or false, got 'on'; YAML 1.2 reads yes, no"),
    "bool_parsing": None,
    "string_type": (RESNET + "tracking: {experiment: 2024}\n", "tracking.experiment: expected text, got 2024; quote it (\"2024\")"),
    "list_type": (RESNET + "training: {schedule: step, milestones: 3}\n", "training.milestones: expected a list, got 3; write [3]"),
    "path_type": (RESNET + "dataset: {name: npz, path: 5}\n", "dataset.path: expected a path (text), got 5"),
    "literal_error": (RESNET + "training: {schedule: cosin}\n",
                      "training.schedule: expected 'constant', 'step', 'cosine' or 'plateau', got 'cosin' (did you mean 'cosine'?)"),
    "too_short": ("model: {family: cells, ops: []}\nsearch: {strategy: random, max_trials: 2}\n", "model.ops: an empty list; give at least 1 item"),
    "too_long": (RESNET + "training: {schedule: step, epochs: 200, milestones: [%s]}\n" % ", ".join(map(str, range(1, 102))),
                 "training.milestones: 101 items; at most 100"),
    "greater_than": (RESNET + "dataset: {corruption: {scale: 0}}\n", "dataset.corruption.scale: must be more than 0, got 0"),
    "greater_than_equal": (RESNET + "training: {epochs: 0}\n", "training.epochs: must be at least 1, got 0"),
    "less_than": (RESNET + "training: {momentum: 1.5}\n", "training.momentum: must be less than 1, got 1.5"),
    "less_than_equal": (RESNET + "dataset: {test_split: 0.95}\n", "dataset.test_split: must be at most 0.9, got 0.95"),
    "string_too_short": (RESNET + "tracking: {experiment: ''}\n", "tracking.experiment: empty text; give at least 1 character"),
    "string_too_long": (RESNET + f"description: {'d' * 5001}\n", "description: 5,001 characters long; at most 5,000 characters"),
    "string_pattern_mismatch": (None, "name: must be 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit "
                                "(it names folders), got 'my search'"),
    "extra_forbidden": (RESNET + "training: {epoch: 3}\n", "training.epoch: unknown key (did you mean 'epochs'?); allowed here: optimizer"),
    "missing": ("dataset: {name: digits}\n", "model: required: at least `model: {family: vgg}` (or resnet, or cells)"),
    "union_tag_invalid": ("model: {family: vggg}\n", "model.family: expected 'vgg', 'resnet', 'cells', 'xception' or 'keras_app', got 'vggg' (did you mean 'vgg'?)"),
    "union_tag_not_found": ("model: {depth: 8}\n", "model.family: required: the model's family, 'vgg', 'resnet', 'cells', 'xception' or 'keras_app'"),
    "value_error": ("model: {family: resnet, depth: 21}\n", "model.depth: ResNet depth 21 is neither 18/34 nor 6n+2"),
    "assertion_error": None,  # no validator asserts
}


def test_every_error_type_the_reader_words_is_tried_here():
    from search.spec.wording import PYDANTIC_TYPES as WORDED

    assert set(PYDANTIC_TYPES) == set(WORDED)


@pytest.mark.parametrize("kind", sorted(k for k, case in PYDANTIC_TYPES.items() if case is not None))
def test_each_pydantic_error_type_reads_plainly(tmp_path, kind):
    """The file does raise that type, and the message names file, line and key, says what it got, and
    shows none of pydantic's wording."""
    from pydantic import ValidationError

    from search.spec.yaml_reader import read_yaml

    body, fragment = PYDANTIC_TYPES[kind]
    text = "name: my search\n" + RESNET if body is None else "name: t\n" + body
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ValidationError) as raised:
        Space.model_validate(read_yaml(path)[1])
    assert kind in [err["type"] for err in raised.value.errors()]
    message = error_for(tmp_path, text).removeprefix(f"{path}: ")
    assert fragment in message and "\n" not in message, message
    assert message.startswith("line ") or kind == "missing", "a key the file has is named with its line: " + message
    assert not [phrase for phrase in PYDANTIC_PHRASES if phrase in message], message


@pytest.mark.parametrize(
    "value, kind",
    [(5.5, "int_from_float"), ("x", "int_parsing"), ("x", "float_parsing"), ("maybe", "bool_parsing"), (3, "dict_type")],
)
def test_error_types_only_a_lax_field_raises_read_plainly_too(tmp_path, value, kind):
    """Types the strict schema never raises, worded in case a field is made lax: from a lax validator."""
    from pydantic import TypeAdapter, ValidationError

    from search.spec.wording import _from_pydantic
    from search.spec.yaml_reader import read_yaml

    target = {"int_from_float": int, "int_parsing": int, "float_parsing": float, "bool_parsing": bool, "dict_type": dict}[kind]
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(target).validate_python(value)
    err = raised.value.errors()[0] | {"loc": ("training", "epochs")}
    assert err["type"] == kind
    node, _ = read_yaml(write(tmp_path / "s.yaml", TINY_SPACE))
    message = str(_from_pydantic(err, node))
    assert message.startswith("line 15: training.epochs: expected ") and ", got " in message, message
    assert not [phrase for phrase in PYDANTIC_PHRASES if phrase in message], message


DID_YOU_MEAN = {  # a misspelt key or value: the closest allowed one, and what is allowed
    "trainig: {epochs: 3}": "trainig: unknown key (did you mean 'training'?); allowed here: name, description, dataset, model, training, search, tracking",
    "training: {epoch: 3}": "training.epoch: unknown key (did you mean 'epochs'?); allowed here: optimizer, learning_rate, momentum",
    "model: {family: resnet, depht: 20}": "model.depht: unknown key (did you mean 'depth'?); allowed here: bn, conv, kernel",
    "dataset: {augmentation: {flp: true}}": "dataset.augmentation.flp: unknown key (did you mean 'flip'?); allowed here: flip, crop_padding, noise",
    "search: {strategy: grdi}": "search.strategy: expected 'grid', 'random', 'bayesian', 'hyperband', 'evolution' or 'nsga2', got 'grdi' (did you mean 'grid'?)",
    "model: {family: resnet, bn: psot}": "model.bn: expected 'none', 'post' or 'pre', got 'psot' (did you mean 'post'?)",
    "model: {family: reset}": "model.family: expected 'vgg', 'resnet', 'cells', 'xception' or 'keras_app', got 'reset' (did you mean 'resnet'?)",
    "model: {family: vgg, config: d}": "model.config: expected 'A', 'A-LRN', 'B', 'C', 'D' or 'E', got 'd' (did you mean 'D'?)",
    "training: {optimizer: [sgd, adma]}": "training.optimizer[1]: expected 'sgd', 'adam', 'adamw' or 'rmsprop', got 'adma' (did you mean 'adam'?)",
    # no close key, but the key exists elsewhere: where it belongs
    "training: {seed: 3}": "training.seed: unknown key ('seed' belongs in dataset or in search); allowed here: optimizer",
    "model: {family: cells, width: 2}": "model.width: unknown key ('width' belongs in model with family vgg, resnet or xception); allowed here: family",
    "epochs: 3": "epochs: unknown key ('epochs' belongs in training); allowed here: name, description",
}


@pytest.mark.parametrize("line", sorted(DID_YOU_MEAN))
def test_a_misspelt_key_or_value_suggests_the_closest_allowed_one(tmp_path, line):
    model = "" if line.startswith("model") else RESNET
    message = error_for(tmp_path, f"name: t\n{model}{line}\nsearch: {{strategy: random, max_trials: 2}}\n"
                        if "cells" in line else f"name: t\n{model}{line}\n")
    assert DID_YOU_MEAN[line] in message, message


def test_no_suggestion_when_nothing_is_close(tmp_path):
    message = error_for(tmp_path, "name: t\n" + RESNET + "training: {lr: 0.1}\nsearch: {strategy: genetic}\n")
    assert "training.lr: unknown key; allowed here: optimizer, learning_rate" in message
    assert "search.strategy: expected 'grid', 'random', 'bayesian', 'hyperband', 'evolution' or 'nsga2', got 'genetic'\n" in message + "\n"


def test_a_list_of_seeds_points_to_repeats_and_studies(tmp_path):
    message = error_for(tmp_path, TINY_SPACE.replace("seed: 7", "seed: [1, 2, 3]"))
    assert "line 18: search.seed: expected a whole number, got a list [1, 2, 3]" in message
    assert "search.repeats" in message and "independent replicates of each trial" in message
    assert "experiments/<study>/study.yaml lists its seeds" in message and "\n" not in message
    other = error_for(tmp_path, TINY_SPACE.replace("epochs: 2", "epochs: [2, 4]"))
    assert "training.epochs: expected a whole number, got a list [2, 4]; epochs takes one value (only axes take a list of choices)" in other
