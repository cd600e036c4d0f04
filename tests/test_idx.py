"""MNIST and Fashion-MNIST read offline from IDX files: a `dataset.path` folder, Keras' cache, Debian's
package folder (here always a folder of tmp_path, or an empty one). Every file is written here, tiny."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from search.cli import app
from search.data import data_memory, describe_arrays, describe_input, load_arrays, load_data, load_test_arrays, planned_split, sources
from search.errors import DataError
from search.spec.reader import load_space
from search.spec.schema import Dataset

TRAIN, TEST = 12, 6
SPACE = "name: idx\ndataset: {{name: {name}, path: {path}, input_size: 28, validation_split: 0.25}}\nmodel: {{family: resnet, depth: 8, width: 0.5}}\n"
NAMED_SPACE = "name: idx\ndataset: {{name: {name}, input_size: 28}}\nmodel: {{family: resnet, depth: 8}}\n"


def idx_bytes(array: np.ndarray, magic: bytes | None = None) -> bytes:
    head = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    return head + struct.pack(f">{array.ndim}I", *array.shape) + array.astype("u1").tobytes()


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def images(n: int, seed: int) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (n, 28, 28)).astype("u1")


def labels(n: int, offset: int = 0) -> np.ndarray:
    return ((np.arange(n) + offset) % 10).astype("u1")


def idx_folder(folder: Path, gz=("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"), offset=0, test=True) -> Path:
    """The four IDX files of a tiny set, those named in `gz` gzipped; labels start at `offset`."""
    parts = {"train-images-idx3-ubyte": images(TRAIN, 1), "train-labels-idx1-ubyte": labels(TRAIN, offset)}
    if test:
        parts |= {"t10k-images-idx3-ubyte": images(TEST, 2), "t10k-labels-idx1-ubyte": labels(TEST, offset)}
    for name, array in parts.items():
        put(folder / (f"{name}.gz" if name in gz else name), idx_bytes(array))
    return folder


@pytest.fixture
def no_machine_data(tmp_path, monkeypatch):
    """Keras' cache and Debian's folder empty, whatever this machine holds."""
    keras_home = tmp_path / "keras-home"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian" / "fashion-mnist")
    return keras_home


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch, no_machine_data):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return cwd


def refused(command: str, space: Path, cwd: Path, *fragments: str) -> str:
    result = CliRunner().invoke(app, [command, str(space)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in error[0], result.output
    assert list(cwd.iterdir()) == [], "nothing may be written"
    return error[0]


def test_a_dataset_path_of_idx_files_validates_and_loads(tmp_path, no_machine_data):
    folder = idx_folder(tmp_path / "data" / "fashion")
    space_file = tmp_path / "data" / "space.yaml"
    space_file.write_text(SPACE.format(name="fashion_mnist", path="fashion"))
    result = CliRunner().invoke(app, ["validate", str(space_file)])
    assert result.exit_code == 0 and result.output.startswith("ok "), result.output
    spec = load_space(space_file).dataset
    assert spec.path == folder.resolve()

    x, y = load_arrays(spec)
    assert x.shape == (TRAIN, 28, 28) and x.dtype == np.float32
    assert np.array_equal(y, labels(TRAIN)) and np.array_equal(x, images(TRAIN, 1) / np.float32(255))
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.99
    x_test, y_test = load_test_arrays(spec)
    assert x_test.shape == (TEST, 28, 28) and np.array_equal(y_test, labels(TEST))
    assert np.array_equal(x_test, images(TEST, 2) / np.float32(255))

    info = describe_arrays(spec)
    assert (info.images, info.height, info.width, info.channels) == (TRAIN, 28, 28, 1)
    assert info.source == str(folder.resolve() / "train-images-idx3-ubyte.gz")
    assert data_memory(info, spec).images == TRAIN
    assert describe_input(spec) == ((28, 28, 1), 10)
    data = load_data(spec)
    assert data.input_shape == (28, 28, 1) and len(data.y_train) == 9 and len(data.y_val) == 3
    # the official test part is the test set, whole; test_split does not take from the training images
    assert len(data.y_test) == TEST and np.array_equal(data.y_test, labels(TEST))
    split = planned_split(spec)
    assert split.official_test and data.hashes == split.hashes()
    train = x[split.train]  # standardised by the training part's statistics, the test part too
    expected = (x_test - train.mean()) / (train.std() + 1e-7)
    assert np.allclose(data.x_test[..., 0], expected, atol=1e-4)


def test_mnist_takes_a_dataset_path_too_and_plain_files_before_gzipped_ones(tmp_path, no_machine_data):
    folder = idx_folder(tmp_path / "mnist", gz=())
    put(folder / "train-labels-idx1-ubyte.gz", b"not read: the plain file comes first")
    x, y = load_arrays(Dataset(name="mnist", path=folder, input_size=28))
    assert x.shape == (TRAIN, 28, 28) and np.array_equal(y, labels(TRAIN))


def test_a_dataset_path_without_the_training_files_is_refused_by_validate(tmp_path):
    folder = tmp_path / "half"
    put(folder / "train-images-idx3-ubyte.gz", idx_bytes(images(TRAIN, 1)))
    space = tmp_path / "space.yaml"
    space.write_text(SPACE.format(name="fashion_mnist", path="half"))
    result = CliRunner().invoke(app, ["validate", str(space)])
    assert result.exit_code == 2 and "dataset.path:" in result.output and "lacks train-labels-idx1-ubyte" in result.output
    space.write_text(SPACE.format(name="mnist", path="half/train-images-idx3-ubyte.gz"))
    result = CliRunner().invoke(app, ["validate", str(space)])
    assert result.exit_code == 2 and "dataset.path: no folder at" in result.output
    space.write_text(SPACE.format(name="digits", path="half"))
    result = CliRunner().invoke(app, ["validate", str(space)])
    assert result.exit_code == 2 and "dataset.path: only used with dataset.name 'npz' or 'folder'" in result.output


@pytest.mark.parametrize("home", ["KERAS_HOME", "HOME"])
def test_keras_cache_of_fashion_mnist_is_read_without_downloading(home, tmp_path, monkeypatch):
    base = tmp_path / "somewhere"
    if home == "KERAS_HOME":
        monkeypatch.setenv("KERAS_HOME", str(base / "kh"))
        cache = base / "kh" / "datasets" / "fashion-mnist"
    else:
        monkeypatch.delenv("KERAS_HOME", raising=False)
        monkeypatch.setenv("HOME", str(base))
        cache = base / ".keras" / "datasets" / "fashion-mnist"
    idx_folder(cache, gz=tuple(sources.IDX_FILES["train"] + sources.IDX_FILES["test"]), offset=3)  # as Keras stores it
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", idx_folder(tmp_path / "debian"))
    spec = Dataset(name="fashion_mnist", input_size=28)
    assert sources.find_named(spec).path == cache
    x, y = load_arrays(spec)
    assert x.shape == (TRAIN, 28, 28) and np.array_equal(y, labels(TRAIN, 3))
    assert np.array_equal(load_test_arrays(spec)[1], labels(TEST, 3))


def test_keras_cache_of_mnist_is_its_npz(tmp_path, monkeypatch, no_machine_data):
    cache = no_machine_data / "datasets"
    cache.mkdir()
    np.savez(cache / "mnist.npz", x_train=images(TRAIN, 1), y_train=labels(TRAIN), x_test=images(TEST, 2), y_test=labels(TEST))
    spec = Dataset(name="mnist", input_size=28)
    assert describe_arrays(spec).images == TRAIN and describe_input(spec) == ((28, 28, 1), 10)
    x, y = load_arrays(spec)
    assert np.array_equal(x, images(TRAIN, 1) / np.float32(255)) and np.array_equal(y, labels(TRAIN))
    x_test, y_test = load_test_arrays(spec)
    assert x_test.shape == (TEST, 28, 28) and np.array_equal(y_test, labels(TEST))


def test_debians_folder_is_the_last_place_looked(tmp_path, monkeypatch, no_machine_data):
    debian = idx_folder(tmp_path / "debian" / "fashion-mnist", gz=tuple(sources.IDX_FILES["train"] + sources.IDX_FILES["test"]), offset=5)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", debian)
    x, y = load_arrays(Dataset(name="fashion_mnist", input_size=28))
    assert np.array_equal(y, labels(TRAIN, 5))
    own = idx_folder(tmp_path / "own", offset=7)
    assert np.array_equal(load_arrays(Dataset(name="fashion_mnist", path=own))[1], labels(TRAIN, 7))
    assert sources.find_named(Dataset(name="mnist")) is None  # Debian ships Fashion-MNIST only


def test_a_folder_without_the_test_part_says_so(tmp_path, no_machine_data):
    folder = idx_folder(tmp_path / "train-only", test=False)
    with pytest.raises(DataError, match=r"^dataset.path: .*train-only lacks the test files t10k-images-idx3-ubyte"):
        load_test_arrays(Dataset(name="fashion_mnist", path=folder))
    with pytest.raises(DataError, match="^dataset.name: 'digits' has no official test part"):
        load_test_arrays(Dataset(name="digits"))


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5])


def _forged_count(path: Path) -> None:
    """A gzipped header claiming 10^9 images over the same few bytes of pixels."""
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:4] + struct.pack(">I", 10**9) + raw[8:]))


BAD = {
    "cut_plain_labels": ("train-labels-idx1-ubyte", _cut,
                         "its header describes 12 values of uint8 (20 bytes with the header), but the file holds 15 bytes; the file is cut short"),
    "cut_gzipped_images": ("train-images-idx3-ubyte.gz", _cut, "the file is cut short, damaged or forged"),
    "forged_image_count": ("train-images-idx3-ubyte.gz", _forged_count, "its header describes 1,000,000,000 x 28 x 28 values of uint8"),
    "wrong_magic": ("train-images-idx3-ubyte.gz", lambda p: put(p, idx_bytes(images(TRAIN, 1), magic=b"\x00\x00\x08\x01")),
                    "is not an IDX file of images: its magic number is 0x00000801, expected 0x00000803"),
    "label_count": ("train-labels-idx1-ubyte", lambda p: put(p, idx_bytes(labels(TRAIN - 1))), "holds 11 labels but"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_idx_file_is_refused_naming_it(case, tmp_path, empty_cwd):
    name, damage, fragment = BAD[case]
    folder = idx_folder(tmp_path / "data")
    damage(folder / name)
    space = tmp_path / "space.yaml"
    space.write_text(SPACE.format(name="fashion_mnist", path=folder))
    error = refused("run", space, empty_cwd, str(space), f"dataset.path: {folder / name}", fragment)
    if case == "label_count":
        assert f"{folder / 'train-images-idx3-ubyte.gz'} holds 12 images" in error


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_without_any_source_the_error_says_where_it_looked_and_how_to_get_it(name, tmp_path, empty_cwd, no_machine_data):
    space = tmp_path / "space.yaml"
    space.write_text(NAMED_SPACE.format(name=name))
    cache = no_machine_data / "datasets" / sources.KERAS_CACHE_NAMES[name]
    error = refused("run", space, empty_cwd, f"dataset.path: {name} is not on this machine (looked in {cache} (Keras' cache)",
                    f"keras.datasets.{name}.load_data()'` once on a machine with a network",
                    "or set dataset.path to a folder holding train-images-idx3-ubyte and train-labels-idx1-ubyte")
    debian = f"{sources.DEBIAN_FASHION_MNIST} (Debian's dataset-fashion-mnist)"
    if name == "fashion_mnist":
        assert debian in error and "apt-get install dataset-fashion-mnist" in error
    else:
        assert "Debian" not in error and "apt-get" not in error
    # the estimate still works without the data: the set's known size
    spec = Dataset(name=name, input_size=28)
    assert data_memory(describe_arrays(spec), spec).images == 60000
    assert describe_input(spec) == ((28, 28, 1), 10)


def test_keras_cache_folder_is_resolved_as_keras_resolves_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert sources.keras_cache() == tmp_path / "kh" / "datasets"
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sources.keras_cache() == tmp_path / ".keras" / "datasets"


def test_the_same_images_found_in_two_places_are_one_source_for_the_leak_check(tmp_path, no_machine_data):
    """A copy of the IDX files elsewhere holds the same images: a search on one and a transfer on the
    other are checked against each other, not waved through as different data."""
    from search.data import leak

    first, second = idx_folder(tmp_path / "a"), idx_folder(tmp_path / "b")
    search = Dataset(name="fashion_mnist", path=first, input_size=28, validation_split=0.5, seed=1)
    judged = Dataset(name="fashion_mnist", path=second, input_size=28, validation_split=0.5, seed=2)
    assert leak(search, judged) is not None
    nested = search.model_copy(update={"subset": 4})  # its 4 images are training images of the other's split
    assert leak(nested, judged.model_copy(update={"seed": 1})) is None


def test_pad_frames_the_28x28_images_in_32x32_unscaled(tmp_path, no_machine_data):
    folder = idx_folder(tmp_path / "fashion")
    spec = Dataset(name="fashion_mnist", path=folder, input_size=32, resize="pad", validation_split=0.25)
    data, x = load_data(spec), load_arrays(spec)[0]
    assert data.input_shape == (32, 32, 1)
    framed = np.zeros((TRAIN, 32, 32), "float32")
    framed[:, 2:30, 2:30] = x  # centred: two pixels of background on every side
    train = framed[planned_split(spec).train]
    expected = (framed[planned_split(spec).validation] - train.mean()) / (train.std() + 1e-7)
    assert np.allclose(data.x_val[..., 0], expected, atol=1e-4)
    resized = load_data(spec.model_copy(update={"resize": "bilinear"}))
    assert not np.allclose(resized.x_val, data.x_val, atol=1e-2), "bilinear scales the pixels, padding does not"
