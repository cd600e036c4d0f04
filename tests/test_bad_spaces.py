"""The bad-input corpus in tests/bad_spaces/: every file fails `archsearch run` with exit status 2, one
message naming the file and the key (or what is wrong with the file), no traceback, nothing written."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from search.cli import app

CORPUS = Path(__file__).parent / "bad_spaces"
EXPECTED = {
    "01_broken_yaml.yaml": "invalid YAML",
    "02_bad_indentation.yaml": "invalid YAML",
    "03_tab_indentation.yaml": "invalid YAML",
    "04_unknown_top_key.yaml": "optimiser: unknown key; allowed here: name, description, dataset",
    "05_unknown_model_key.yaml": "model.dept: unknown key (did you mean 'depth'?); allowed here: bn, conv",
    "06_unknown_training_key.yaml": "training.lr: unknown key; allowed here: optimizer, learning_rate",
    "07_wrong_type_epochs.yaml": "training.epochs: expected a whole number, got 'ten'",
    "08_wrong_type_model.yaml": "model: expected a mapping of model settings (family: 'vgg', 'resnet', 'cells', 'xception' or 'keras_app', then that family's keys), got 'resnet'; write `model: {family: resnet}`",
    "09_list_for_scalar.yaml": "training.epochs: expected a whole number, got a list [1, 2]; epochs takes one value (only axes take a list of choices)",
    "10_empty_choices.yaml": "model.depth: an empty list; give at least 1 value",
    "11_negative_batch.yaml": "training.batch_size: must be at least 1, got -8",
    "12_absurd_epochs.yaml": "training.epochs: must be at most 10,000, got 99999999",
    "13_absurd_learning_rate.yaml": "training.learning_rate: must be at most 10, got 1000000000000.0",
    "14_zero_validation_split.yaml": "dataset.validation_split: must be more than 0, got 0",
    "15_unknown_dataset.yaml": "dataset.name: expected 'digits', 'mnist', 'fashion_mnist', 'cifar10', 'cifar100', 'npz' or 'folder', got 'imagenet'",
    "16_unknown_family.yaml": "model.family: expected 'vgg', 'resnet', 'cells', 'xception' or 'keras_app', got 'alexnet'",
    "17_bad_resnet_depth.yaml": "model.depth: ResNet depth 21 is neither 18/34 nor 6n+2",
    "18_bad_vgg_config.yaml": "model.config: expected 'A', 'A-LRN', 'B', 'C', 'D' or 'E', got 'F'",
    "19_input_too_small_vgg.yaml": "dataset.input_size: 16 is too small for vgg config A",
    "20_input_too_small_resnet.yaml": "dataset.input_size: 16 is too small for resnet depth 18",
    "21_missing_npz.yaml": "dataset.path: no .npz file",
    "22_image_folder_without_images.yaml": "dataset.path:",
    "23_npz_path_without_npz.yaml": "dataset.path: only used with dataset.name 'npz' or 'folder' (or 'mnist' and 'fashion_mnist', for a folder of their IDX files), not 'digits'",
    "24_empty_file.yaml": "file is empty",
    "25_only_comments.yaml": "file is empty",
    "26_not_a_mapping.yaml": "expected a mapping of keys (name, model, ...), got a list [{'name': 'bad'}, {'model': 'resnet'}]",
    "27_billion_laughs.yaml": "aliases (*name) are not allowed",
    "28_python_object_tag.yaml": "python/object/apply:os.system' is not allowed",
    "29_python_name_tag.yaml": "python/name:builtins.exec' is not allowed",
    "30_duplicate_key.yaml": "name: key given twice",
    "31_bad_name.yaml": "name: must be 1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit (it names folders), got '../../etc'",
    "32_seed_zero.yaml": "search.seed: must be at least 1, got 0",
    "33_unknown_strategy.yaml": "search.strategy: expected 'grid', 'random', 'bayesian', 'hyperband', 'evolution' or 'nsga2', got 'genetic'",
    "34_duplicate_choices.yaml": "model.depth: choices must be distinct",
    "35_milestones_without_step.yaml": "training.milestones: only used with schedule 'step'",
    "36_subset_too_large.yaml": "dataset.subset: digits has 1797 training images",
    "37_missing_family.yaml": "model.family: required: the model's family, 'vgg', 'resnet', 'cells', 'xception' or 'keras_app' (it decides the model's other keys)",
    "38_null_model.yaml": "model: expected a mapping of model settings (family: 'vgg', 'resnet', 'cells', 'xception' or 'keras_app', then that family's keys), got null (an empty value)",
    "39_binary.yaml": "binary file",
    "40_latin1.yaml": "not UTF-8 text",
    "41_directory.yaml": "is a directory",
    "42_cells_grid_search.yaml": "search.strategy: grid cannot enumerate searched cells",
    "43_cells_without_max_trials.yaml": "search.max_trials: required when cells are searched",
    "44_genotype_unknown_op.yaml": "model.genotype: normal block 1: unknown op 'conv9x9'; known: identity, sep3x3",
    "45_genotype_state_too_late.yaml": "normal block 1: state 4 does not exist yet",
    "46_sample_larger_than_population.yaml": "search.sample_size: 6 is more than search.population_size (4)",
    "47_cells_unknown_op.yaml": "model.ops[1]: expected 'identity', 'sep3x3', 'sep5x5', 'sep7x7', 'avg3x3', 'max3x3', 'conv1x7_7x1' or 'dil3x3', got 'sep11x11'",
    "48_input_too_small_cells.yaml": "dataset.input_size: 2 is too small for cells stages 3",
    # sizes the file alone decides, bounded where the message says
    "49_resnet_depth_too_deep.yaml": "model.depth: ResNet depth 600002 is more than 1202, the deepest of He et al. 2015",
    "50_resnet_depth_80_digits.yaml": "model.depth: ResNet depth 99999999... (80 digits) is more than 1202",
    "51_genotype_too_many_blocks.yaml": "model.genotype: the normal cell has 11 blocks; a cell has at most 10",
    "52_genotype_too_long.yaml": "model.genotype: 4,639 characters; a genotype is at most 2,000",
    "53_large_grid_without_max_trials.yaml": "search.max_trials: required for a grid of 43,046,721 candidates (more than 10,000)",
    "82_number_of_5000_digits.yaml": "training.epochs: a number of 5,000 digits; a space file's numbers have at most 100",
    "83_huge_max_params.yaml": "search.max_params: must be at most 1,000,000,000,000, got 1000000",
    "84_huge_subset.yaml": "dataset.subset: must be at most 100,000,000, got 1000000",
    "85_too_many_choices.yaml": "training.learning_rate: 1,001 choices; an axis takes at most 1,000",
    "87_too_many_milestones.yaml": "training.milestones: 101 items; at most 100",
    # text that is shown and stored: bounded, printable
    "54_experiment_too_long.yaml": "tracking.experiment: 300 characters long; at most 250 characters",
    "55_experiment_control_character.yaml": "tracking.experiment: must be printable text; U+0007 at character 5",
    "56_experiment_newline.yaml": "tracking.experiment: must be printable text; U+000A",
    "57_experiment_empty.yaml": "tracking.experiment: empty text; give at least 1 character",
    "58_experiment_invisible_character.yaml": "tracking.experiment: must be printable text; U+200B",
    "59_data_path_nul.yaml": "dataset.path: must be printable text; U+0000",
    "60_data_path_too_long.yaml": "dataset.path: 4,503 characters; a path is at most 4,096",
    "61_data_path_name_too_long.yaml": "dataset.path: a part of 304 bytes; a file or folder name is at most 255",
    "62_data_path_empty.yaml": "dataset.path: empty",
    # YAML that PyYAML's composer or constructor cannot take safely
    "63_nested_lists.yaml": "line 10: lists and mappings nested more than 32 levels deep",
    "64_nested_mappings.yaml": "line 10: lists and mappings nested more than 32 levels deep",
    "65_list_as_key.yaml": "line 10: keys must be plain names, not a list",
    "66_mapping_as_key.yaml": "model: keys must be plain names, not a mapping",
    "67_number_as_key.yaml": "training.1: keys must be plain names, not a number",
    "68_null_as_key.yaml": "~: keys must be plain names, not null",
    "88_two_documents.yaml": "line 10: a second YAML document starts here; a space file is one document",
    "89_binary_tag.yaml": "tracking.experiment: tag '!!binary' is not allowed",
    "90_set_tag.yaml": "tracking.experiment: tag '!!set' is not allowed",
    "91_timestamp_tag.yaml": "tracking.experiment: tag '!!timestamp' is not allowed",
    "92_merge_key.yaml": "training.<<: unknown key",
    "93_integer_tag_on_text.yaml": "model.depth: 'twenty' is not an integer (YAML 1.2 core schema)",
    "94_yaml_version_2.yaml": "invalid YAML: found incompatible YAML document",
    "95_bad_unicode_escape.yaml": "invalid YAML: found invalid Unicode character escape code",
    "96_yaml_version_1_1.yaml": "%YAML 1.1: space files are read as YAML 1.2; remove the line",
    # YAML 1.2 readings and strict types: no value silently becomes another type
    "69_yes_is_not_a_boolean.yaml": "model.se: expected true or false, got 'yes'; YAML 1.2 reads yes, no, on and off as text",
    "70_off_is_not_a_boolean.yaml": "model.residual: expected true or false, got 'off'; YAML 1.2 reads yes, no, on and off as text",
    "71_sexagesimal_seed.yaml": "search.seed: expected a whole number, got '1:0:0'",
    "72_nan_learning_rate.yaml": "training.learning_rate: expected a finite number (not .nan or .inf), got nan",
    "73_overflowing_float.yaml": "training.learning_rate: expected a finite number (not .nan or .inf), got inf",
    "74_nan_dropout.yaml": "model.dropout: expected a finite number (not .nan or .inf), got nan",
    "75_quoted_integer.yaml": "training.epochs: expected a whole number, got '5'; remove the quotes to make it a number",
    "76_float_for_integer.yaml": "training.epochs: expected a whole number, got 5.0 (write 5)",
    "77_boolean_for_integer.yaml": "training.epochs: expected a whole number, got true",
    "78_boolean_for_number.yaml": "training.learning_rate: expected a number, got true",
    "79_boolean_for_kernel.yaml": "model.kernel: expected 1, 3, 5 or 7, got true",
    "80_quoted_boolean.yaml": "model.se: expected true or false, got 'true'; remove the quotes",
    "81_float_depth.yaml": "model.depth: expected a whole number, got 20.0 (write 20)",
    "86_nested_choices.yaml": "model.depth[0]: expected a whole number, got a list [8, 14]; each choice is one value (lists of choices do not nest)",
    # frictions a new user hit: what to write instead, said at the key
    "97_several_seeds.yaml": "search.seed: expected a whole number, got a list [1, 2]; a search has one seed: for independent "
    "replicates of each trial set search.repeats, and for several seeds run a study (experiments/<study>/study.yaml lists its seeds)",
    "98_misspelt_section.yaml": "line 8: trainig: unknown key (did you mean 'training'?); allowed here: name, description, dataset, model, training",
    "99_misspelt_training_key.yaml": "line 9: training.epoch: unknown key (did you mean 'epochs'?); allowed here: optimizer, learning_rate",
    "100_misspelt_model_key.yaml": "line 7: model.depht: unknown key (did you mean 'depth'?); allowed here: bn, conv, kernel",
    "101_misspelt_strategy.yaml": "search.strategy: expected 'grid', 'random', 'bayesian', 'hyperband', 'evolution' or 'nsga2', got 'grdi' (did you mean 'grid'?)",
    "102_misspelt_bn.yaml": "line 8: model.bn[1]: expected 'none', 'post' or 'pre', got 'psot' (did you mean 'post'?)",
    "103_misspelt_family.yaml": "model.family: expected 'vgg', 'resnet', 'cells', 'xception' or 'keras_app', got 'reset' (did you mean 'resnet'?)",
    "104_dataset_as_list.yaml": "dataset: expected a mapping of dataset settings (name, path, input_size, ...), got a list [{'name': 'digits'}, ",
    "105_key_in_the_wrong_section.yaml": "model.epochs: unknown key ('epochs' belongs in training); allowed here: bn, conv",
    "106_key_of_another_family.yaml": "model.depth: unknown key ('depth' belongs in model with family resnet); allowed here: family, genotype",
    "107_scalar_for_a_list.yaml": "model.ops: expected a list, got 'sep3x3'; write [sep3x3]",
    "108_wrong_case_optimizer.yaml": "training.optimizer: expected 'sgd', 'adam', 'adamw' or 'rmsprop', got 'SGD' (did you mean 'sgd'?)",
}


# pydantic's own wording, which no message may show: the file's terms only
PYDANTIC_PHRASES = (
    "valid dictionary", "instance of", "Input should", "pydantic", "errors.pydantic.dev", "For further information",
    "Field required", "Extra inputs", "Value error", "after validation", "String should", "List should", "Value should",
    "Unable to extract tag", "does not match any of the expected tags",
)


def test_the_corpus_is_complete():
    on_disk = {path.name for path in CORPUS.iterdir() if path.name != "data"}
    assert on_disk == set(EXPECTED) and len(on_disk) >= 108


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def assert_refused(path: Path, fragment: str, cwd: Path, command: str = "run", one_line: bool = True):
    result = CliRunner().invoke(app, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert str(path) in result.output and fragment in result.output, result.output
    assert "Traceback" not in result.output
    assert not [phrase for phrase in PYDANTIC_PHRASES if phrase in result.output], "pydantic's wording: " + result.output
    if one_line:  # refused from the file alone, before the search prints its first line
        assert len(result.output.strip().splitlines()) == 1, "one line: " + result.output
    assert list(cwd.iterdir()) == [], "nothing may be written: no MLflow store, no tuner folder"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_space_is_refused_before_anything_is_written(name, empty_cwd):
    assert_refused(CORPUS / name, EXPECTED[name], empty_cwd)


def test_a_very_large_file_is_refused_unread(empty_cwd, tmp_path_factory):
    huge = tmp_path_factory.mktemp("huge") / "huge.yaml"
    huge.write_text("name: bad\nmodel: {family: resnet, depth: 8}\n" + "# padding padding padding\n" * 100_000)
    assert_refused(huge, "a space file is at most 1,000,000", empty_cwd)


def test_data_that_fails_to_load_is_refused_before_anything_is_written(empty_cwd, tmp_path_factory):
    folder = tmp_path_factory.mktemp("npz")
    import numpy as np

    np.savez(folder / "d.npz", images=np.zeros((10, 8, 8)))
    space = folder / "s.yaml"
    space.write_text("name: bad\ndataset: {name: npz, path: d.npz, input_size: 8}\nmodel: {family: resnet, depth: 8}\n")
    assert_refused(space, "needs `x` (images) and `y` (labels)", empty_cwd, one_line=False)


# What git cannot store (a FIFO, a device, a symlink loop) or should not (files of hundreds of kilobytes),
# made in a temporary folder: (file name, how to make it, fragment).
def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink_loop(path: Path) -> None:
    other = path.with_name("other.yaml")
    path.symlink_to(other.name)
    other.symlink_to(path.name)


def _data_symlink_loop(path: Path) -> None:
    (path.parent / "d.npz").symlink_to("e.npz")
    (path.parent / "e.npz").symlink_to("d.npz")
    path.write_text("name: bad\ndataset: {name: npz, path: d.npz, input_size: 8}\nmodel: {family: resnet, depth: 8}\n")


def _folder_symlink_loop(path: Path) -> None:
    (path.parent / "images").symlink_to("images")
    path.write_text("name: bad\ndataset: {name: folder, path: images, input_size: 8}\nmodel: {family: resnet, depth: 8}\n")


def _text(text: str):
    return lambda path: path.write_text("name: bad\nmodel: {family: resnet, depth: 8}\n" + text)


MADE = {
    "fifo": (_fifo, "a FIFO, not a regular file"),
    "dev_zero": (lambda path: path.symlink_to("/dev/zero"), "a device or socket, not a regular file"),
    "symlink_loop": (_symlink_loop, "a symlink loop; a space file is a regular file"),
    "data_symlink_loop": (_data_symlink_loop, "dataset.path: "),
    "folder_symlink_loop": (_folder_symlink_loop, "dataset.path: "),
    "50000_nested_lists": (_text("x: " + "[" * 50_000 + "]" * 50_000 + "\n"), "nested more than 32 levels deep"),
    "20000_nested_mappings": (_text("x: " + "{a: " * 20_000 + "1" + "}" * 20_000 + "\n"), "nested more than 32 levels deep"),
    "50001_values": (_text("x: [" + ",".join(["1"] * 50_001) + "]\n"), "more than 50,000 values"),
    "900000_character_experiment": (_text("tracking: {experiment: " + "e" * 900_000 + "}\n"), "at most 250 characters"),
    "20000_block_genotype": (
        lambda path: path.write_text(
            "name: bad\nmodel: {family: cells, genotype: 'normal: " + ", ".join(["identity(0)+identity(1)"] * 20_000)
            + "; reduce: identity(0)+identity(1)'}\nsearch: {strategy: random, max_trials: 2}\n"
        ),
        "a genotype is at most 2,000",
    ),
}


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
@pytest.mark.parametrize("case", sorted(MADE))
def test_hostile_files_made_here_are_refused(case, command, empty_cwd, tmp_path_factory):
    make, fragment = MADE[case]
    path = tmp_path_factory.mktemp(case) / "space.yaml"
    make(path)
    assert_refused(path, fragment, empty_cwd, command)
    if case.endswith("symlink_loop") and case != "symlink_loop":
        assert "symlink loop" in CliRunner().invoke(app, ["validate", str(path)]).output
