"""The bad-input corpus in tests/bad_spaces/: every file fails `archsearch run` with exit status 2, one
message naming the file and the key (or what is wrong with the file), no traceback, nothing written."""

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
}


def test_the_corpus_is_complete():
    on_disk = {path.name for path in CORPUS.iterdir() if path.name != "data"}
    assert on_disk == set(EXPECTED) and len(on_disk) >= 30


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def assert_refused(path: Path, fragment: str, cwd: Path):
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert str(path) in result.output and fragment in result.output, result.output
    assert "Traceback" not in result.output
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
    assert_refused(space, "needs `x` (images) and `y` (labels)", empty_cwd)
