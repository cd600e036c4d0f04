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
    "04_unknown_top_key.yaml": "optimiser: unknown key; allowed here: name, dataset",
    "05_unknown_model_key.yaml": "model.dept: unknown key",
    "06_unknown_training_key.yaml": "training.lr: unknown key; allowed here: optimizer, learning_rate",
    "07_wrong_type_epochs.yaml": "training.epochs: Input should be a valid integer",
    "08_wrong_type_model.yaml": "model: Input should be a valid dictionary",
    "09_list_for_scalar.yaml": "training.epochs: Input should be a valid integer",
    "10_empty_choices.yaml": "model.depth: Value should have at least 1 item",
    "11_negative_batch.yaml": "training.batch_size: Input should be greater than or equal to 1",
    "12_absurd_epochs.yaml": "training.epochs: Input should be less than or equal to 10000",
    "13_absurd_learning_rate.yaml": "training.learning_rate: Input should be less than or equal to 10",
    "14_zero_validation_split.yaml": "dataset.validation_split: Input should be greater than 0",
    "15_unknown_dataset.yaml": "dataset.name: Input should be 'digits'",
    "16_unknown_family.yaml": "model.family: Input should be 'vgg', 'resnet' or 'cells' (got 'alexnet')",
    "17_bad_resnet_depth.yaml": "model.depth: ResNet depth 21 is neither 18/34 nor 6n+2",
    "18_bad_vgg_config.yaml": "model.config: Input should be 'A', 'A-LRN'",
    "19_input_too_small_vgg.yaml": "dataset.input_size: 16 is too small for vgg config A",
    "20_input_too_small_resnet.yaml": "dataset.input_size: 16 is too small for resnet depth 18",
    "21_missing_npz.yaml": "dataset.path: no .npz file",
    "22_image_folder_without_images.yaml": "dataset.path:",
    "23_npz_path_without_npz.yaml": "dataset.path: only used with dataset.name 'npz' or 'folder'",
    "24_empty_file.yaml": "file is empty",
    "25_only_comments.yaml": "file is empty",
    "26_not_a_mapping.yaml": "expected a mapping",
    "27_billion_laughs.yaml": "aliases (*name) are not allowed",
    "28_python_object_tag.yaml": "python/object/apply:os.system' is not allowed",
    "29_python_name_tag.yaml": "python/name:builtins.exec' is not allowed",
    "30_duplicate_key.yaml": "name: key given twice",
    "31_bad_name.yaml": "name: String should match pattern",
    "32_seed_zero.yaml": "search.seed: Input should be greater than or equal to 1",
    "33_unknown_strategy.yaml": "search.strategy: Input should be 'grid'",
    "34_duplicate_choices.yaml": "model.depth: choices must be distinct",
    "35_milestones_without_step.yaml": "training.milestones: only used with schedule 'step'",
    "36_subset_too_large.yaml": "dataset.subset: digits has 1797 training images",
    "37_missing_family.yaml": "model.family: Field required",
    "38_null_model.yaml": "model: Input should be a valid dictionary",
    "39_binary.yaml": "binary file",
    "40_latin1.yaml": "not UTF-8 text",
    "41_directory.yaml": "is a directory",
    "42_cells_grid_search.yaml": "search.strategy: grid cannot enumerate searched cells",
    "43_cells_without_max_trials.yaml": "search.max_trials: required when cells are searched",
    "44_genotype_unknown_op.yaml": "model.genotype: normal block 1: unknown op 'conv9x9'; known: identity, sep3x3",
    "45_genotype_state_too_late.yaml": "normal block 1: state 4 does not exist yet",
    "46_sample_larger_than_population.yaml": "search.sample_size: 6 is more than search.population_size (4)",
    "47_cells_unknown_op.yaml": "model.ops[1]: Input should be 'identity'",
    "48_input_too_small_cells.yaml": "dataset.input_size: 2 is too small for cells stages 3",
    # sizes the file alone decides, bounded where the message says
    "49_resnet_depth_too_deep.yaml": "model.depth: ResNet depth 600002 is more than 1202, the deepest of He et al. 2015",
    "50_resnet_depth_80_digits.yaml": "model.depth: ResNet depth 99999999... (80 digits) is more than 1202",
    "51_genotype_too_many_blocks.yaml": "model.genotype: the normal cell has 11 blocks; a cell has at most 10",
    "52_genotype_too_long.yaml": "model.genotype: 4,639 characters; a genotype is at most 2,000",
    "53_large_grid_without_max_trials.yaml": "search.max_trials: required for a grid of 43,046,721 candidates (more than 10,000)",
    "82_number_of_5000_digits.yaml": "training.epochs: a number of 5,000 digits; a space file's numbers have at most 100",
    "83_huge_max_params.yaml": "search.max_params: Input should be less than or equal to 1000000000000",
    "84_huge_subset.yaml": "dataset.subset: Input should be less than or equal to 100000000",
    "85_too_many_choices.yaml": "training.learning_rate: 1,001 choices; an axis takes at most 1,000",
    "87_too_many_milestones.yaml": "training.milestones: List should have at most 100 items",
    # text that is shown and stored: bounded, printable
    "54_experiment_too_long.yaml": "tracking.experiment: String should have at most 250 characters",
    "55_experiment_control_character.yaml": "tracking.experiment: must be printable text; U+0007 at character 5",
    "56_experiment_newline.yaml": "tracking.experiment: must be printable text; U+000A",
    "57_experiment_empty.yaml": "tracking.experiment: String should have at least 1 character",
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
    "69_yes_is_not_a_boolean.yaml": "model.se: Input should be a valid boolean (got 'yes')",
    "70_off_is_not_a_boolean.yaml": "model.residual: Input should be a valid boolean (got 'off')",
    "71_sexagesimal_seed.yaml": "search.seed: Input should be a valid integer (got '1:0:0')",
    "72_nan_learning_rate.yaml": "training.learning_rate: Input should be a finite number (got nan)",
    "73_overflowing_float.yaml": "training.learning_rate: Input should be a finite number (got inf)",
    "74_nan_dropout.yaml": "model.dropout: Input should be a finite number (got nan)",
    "75_quoted_integer.yaml": "training.epochs: Input should be a valid integer (got '5')",
    "76_float_for_integer.yaml": "training.epochs: Input should be a valid integer (got 5.0)",
    "77_boolean_for_integer.yaml": "training.epochs: Input should be a valid integer (got True)",
    "78_boolean_for_number.yaml": "training.learning_rate: Input should be a valid number (got True)",
    "79_boolean_for_kernel.yaml": "model.kernel: Input should be 1, 3, 5 or 7 (got True)",
    "80_quoted_boolean.yaml": "model.se: Input should be a valid boolean (got 'true')",
    "81_float_depth.yaml": "model.depth: Input should be a valid integer (got 20.0)",
    "86_nested_choices.yaml": "model.depth[0]: Input should be a valid integer",
}


def test_the_corpus_is_complete():
    on_disk = {path.name for path in CORPUS.iterdir() if path.name != "data"}
    assert on_disk == set(EXPECTED) and len(on_disk) >= 96


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
