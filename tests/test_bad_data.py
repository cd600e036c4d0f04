"""Bad data, written here into tmp_path: every case fails `archsearch run` with exit status 2, one line
naming the data file (and the space file), no traceback, nothing written in the working folder."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from search.cli import app

NPZ_SPACE = "name: bad\ndataset: {{name: npz, path: {path}, input_size: 8{extra}}}\nmodel: {{family: resnet, depth: 8}}\n"
FOLDER_SPACE = "name: bad\ndataset: {{name: folder, path: {path}, input_size: 8}}\nmodel: {{family: resnet, depth: 8}}\n"
DIGITS_SPACE = "name: bad\ndataset: {{name: digits, input_size: {size}{extra}}}\nmodel: {{family: resnet, depth: 8}}\n"


def images(n=20, side=8, seed=0):
    return np.random.RandomState(seed).rand(n, side, side).astype("float32")


def two_classes(n=20):
    return np.arange(n) % 2


def forged_header(path: Path) -> None:
    """A valid-looking x.npy whose header claims 10^12 images of 8x8 float32 over 64 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 8, 8)})
    y = io.BytesIO()
    np.save(y, two_classes())
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 64)
        archive.writestr("y.npy", y.getvalue())


def png(colour: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((10, 10, 3), colour, dtype="uint8")).save(out, format="PNG")
    return out.getvalue()


def folder(root: Path, bad: dict[str, bytes] | None = None, empty_class: bool = False) -> Path:
    for name, colour in (("cats", 40), ("dogs", 200)):
        (root / name).mkdir(parents=True)
        for i in range(4):
            (root / name / f"{i}.png").write_bytes(png(colour + i))
    for relative, content in (bad or {}).items():
        (root / relative).write_bytes(content)
    if empty_class:
        (root / "zebras").mkdir()
    return root


def npz(**arrays):
    return lambda path: np.savez(path, **arrays)


NPZ_CASES = {
    "string_pixels": (npz(x=np.array([["a"] * 8] * 8 * 20).reshape(20, 8, 8), y=two_classes()), "x holds <U1 values; images must be numbers"),
    "object_pixels": (npz(x=np.array([None] * 20, dtype=object), y=two_classes()), "x holds Python objects"),
    "nan_pixels": (npz(x=np.where(np.arange(20 * 64).reshape(20, 8, 8) % 97 == 0, np.nan, images()), y=two_classes()),
                   "x holds 14 NaN and 0 infinite pixel values (in 14 of 20 images)"),
    "inf_pixels": (npz(x=np.concatenate([np.full((2, 8, 8), np.inf), images(18)]).astype("float32"), y=two_classes()),
                   "x holds 0 NaN and 128 infinite pixel values (in 2 of 20 images)"),
    "one_class": (npz(x=images(), y=np.zeros(20, dtype=int)), "every label is 0; a classifier needs at least two classes"),
    "fractional_labels": (npz(x=images(), y=np.arange(20) / 4), "y holds 15 labels that are not whole numbers"),
    "string_labels": (npz(x=images(), y=np.array(["cat", "dog"] * 10)), "y holds <U3 values; labels must be numbers"),
    "length_mismatch": (npz(x=images(20), y=two_classes(19)), "x holds 20 images but y holds 19 labels"),
    "flat_images": (npz(x=np.zeros((20, 64), dtype="float32"), y=two_classes()), "x has shape (20, 64); expected (n, h, w)"),
    "one_hot_labels": (npz(x=images(), y=np.eye(2)[two_classes()]), "y has shape (20, 2); expected one label per image"),
    "no_images": (npz(x=np.zeros((0, 8, 8), dtype="float32"), y=np.zeros(0, dtype=int)), "x holds no images"),
    "forged_huge_header": (forged_header, "x's header claims shape (1000000000000, 8, 8) of float32 (232.8 TiB), but the file holds only 64 bytes"),
    "text_as_npz": (lambda path: path.write_text("x,y\n1,2\n"), "is not an .npz archive"),
    "npy_as_npz": (lambda path: path.write_bytes(_npy_bytes(images())), "is not an .npz archive"),
    "truncated_npz": (lambda path: path.write_bytes(_npz_bytes(x=images(), y=two_classes())[:-200]), "is not an .npz archive"),
}


def _npy_bytes(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _npz_bytes(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return cwd


def assert_refused(space: Path, named: Path | str, fragment: str, cwd: Path, command: str = "run"):
    result = CliRunner().invoke(app, [command, str(space)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.output  # one line (the run command's header may come before it)
    assert str(space) in error[0] and str(named) in error[0] and fragment in error[0], result.output
    assert "Traceback" not in result.output
    assert list(cwd.iterdir()) == [], "nothing may be written: no MLflow store, no tuner folder"


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_bad_npz_is_refused_naming_the_file(case, tmp_path, empty_cwd):
    write, fragment = NPZ_CASES[case]
    data = tmp_path / "data" / f"{case}.npz"
    data.parent.mkdir()
    write(data)
    space = tmp_path / "data" / "space.yaml"
    space.write_text(NPZ_SPACE.format(path=data.name, extra=""))
    assert_refused(space, data, fragment, empty_cwd)


FOLDER_CASES = {
    "corrupt_png": ({"dogs/2.png": png(7)[:60]}, "dogs/2.png is not a readable image (Invalid PNG data"),
    "text_as_png": ({"cats/notes.png": b"these are my notes, not a picture\n"}, "cats/notes.png is not a readable image (Unknown image file format"),
    "empty_png": ({"cats/0.png": b""}, "cats/0.png is not a readable image"),
}


@pytest.mark.parametrize("case", sorted(FOLDER_CASES))
def test_a_bad_image_in_a_folder_is_named(case, tmp_path, empty_cwd):
    bad, fragment = FOLDER_CASES[case]
    root = folder(tmp_path / "images", bad)
    space = tmp_path / "space.yaml"
    space.write_text(FOLDER_SPACE.format(path=root))
    assert_refused(space, root / next(iter(bad)), fragment, empty_cwd)


def test_an_empty_class_folder_is_refused(tmp_path, empty_cwd):
    root = folder(tmp_path / "images", empty_class=True)
    space = tmp_path / "space.yaml"
    space.write_text(FOLDER_SPACE.format(path=root))
    assert_refused(space, root / "zebras", "holds no images", empty_cwd)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (", subset: 2", "dataset.subset: 2 images with validation_split 0.2 give 2 training and 0 validation images"),
        (", subset: 3, validation_split: 0.5", "dataset.subset: the 1 training images of this split are all of one class"),
        (", validation_split: 0.9, subset: 10", "dataset.subset: 10 images with validation_split 0.9 give 1 training and 9"),
    ],
)
def test_a_subset_too_small_for_the_split_is_refused(extra, fragment, tmp_path, empty_cwd):
    space = tmp_path / "space.yaml"
    space.write_text(DIGITS_SPACE.format(size=8, extra=extra))
    if "give 1 training" in fragment:
        fragment = "dataset.subset: the 1 training images of this split are all of one class"
    assert_refused(space, space, fragment, empty_cwd)


def test_data_too_large_to_prepare_is_refused_before_it_is_resized(tmp_path, empty_cwd):
    """1,797 digits at 1024x1024 are 7 GiB a copy: refused at once, not after a climb through memory."""
    space = tmp_path / "space.yaml"
    space.write_text(DIGITS_SPACE.format(size=1024, extra=""))
    assert_refused(space, "digits (1,797 images)", "dataset.input_size: preparing digits (1,797 images) at 1024x1024x1 takes about 28.1 GiB", empty_cwd)


def test_good_data_of_every_kind_still_loads(tmp_path):
    from search.data import load_data
    from search.spec.schema import Dataset

    path = tmp_path / "ok.npz"
    np.savez(path, x=(images() * 255).astype("uint8"), y=(two_classes() * 1.0))  # whole-number float labels are class ids
    assert load_data(Dataset(name="npz", path=path, input_size=8, seed=1)).num_classes == 2
    data = load_data(Dataset(name="folder", path=folder(tmp_path / "images"), input_size=8, seed=1))
    assert data.num_classes == 2 and data.input_shape == (8, 8, 3)
