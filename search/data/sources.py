"""Data sets by name -> raw image and label arrays (no split, no scaling beyond [0, 1]).

The embedded default is scikit-learn's handwritten digits (1,797 8x8 images), so every space runs
without a network. Every source is first described without reading its pixels (`describe_arrays`), so
that a data set too large for the machine, or an `.npz` whose header lies, is refused before it is read;
what is read is then checked (`check_arrays`), so that unusable data fails here, with the file named,
rather than in every trial.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.errors import DataError, reported_as
from search.spec.schema import Dataset

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
# (images, height, width, channels, classes) of the named sets: known without loading them
KNOWN_SHAPES = {
    "digits": (1797, 8, 8, 1, 10),
    "mnist": (60000, 28, 28, 1, 10),
    "fashion_mnist": (60000, 28, 28, 1, 10),
    "cifar10": (50000, 32, 32, 3, 10),
    "cifar100": (50000, 32, 32, 3, 100),
}
# What Keras' image_dataset_from_directory reads, in its order (the folder loader keeps its results)
IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
FOLDER_CHANNELS = 3  # folders are decoded as RGB


@dataclass(frozen=True)
class ArrayInfo:
    """What a source holds, known before its pixels are read. `height`/`width` are the stored size
    (a folder's images are resized as they are decoded: there, the input size)."""

    images: int
    height: int
    width: int
    channels: int
    source: str  # the file or set the messages name

    @property
    def raw_bytes(self) -> int:
        """The images as the loaders return them: float32 at their stored size."""
        return self.images * self.height * self.width * self.channels * 4


def describe_input(spec: Dataset) -> tuple[tuple[int, int, int], int]:
    """(input shape, number of classes) without reading the pixels: from the table of named sets, an
    `.npz`'s headers and labels, a folder's class folders."""
    if spec.name in KNOWN_SHAPES:
        *_, channels, classes = KNOWN_SHAPES[spec.name]
        return (spec.input_size, spec.input_size, channels), classes
    info = describe_arrays(spec)
    if spec.name == "npz":
        path = Path(spec.path)
        try:
            with reported_as(DataError, f"read dataset.path {path}"), np.load(path, allow_pickle=False) as arrays:
                y = arrays["y"].reshape(-1)
        except (ValueError, EOFError, zipfile.BadZipFile) as error:  # labels cut short or failing their CRC
            raise DataError(f"dataset.path: {path} is not a readable .npz ({error})") from None
        classes = _check_labels(y, f"dataset.path: {path}")
    else:
        classes = len(_index_folder(Path(spec.path))[2])
    return (spec.input_size, spec.input_size, info.channels), classes


def describe_arrays(spec: Dataset) -> ArrayInfo:
    """Size and shape of the data set from what can be read cheaply: a table, the `.npz` headers, the
    folder's file list. An `.npz` whose headers are malformed or claim more than the file holds is refused."""
    if spec.name in KNOWN_SHAPES:
        n, h, w, c, _ = KNOWN_SHAPES[spec.name]
        return ArrayInfo(n, h, w, c, spec.name)
    if spec.name == "npz":
        path = Path(spec.path)
        (n, *shape), _ = _npz_headers(path)
        h, w, c = shape if len(shape) == 3 else (*shape, 1)
        return ArrayInfo(n, h, w, c, str(path))
    if spec.name == "folder":
        files, _, _ = _index_folder(Path(spec.path))
        return ArrayInfo(len(files), spec.input_size, spec.input_size, FOLDER_CHANNELS, str(spec.path))
    raise DataError(f"dataset.name: unknown data set {spec.name!r}")


def load_arrays(spec: Dataset, before_decoding: Callable[[ArrayInfo], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The images (float32 in [0, 1] for 8-bit sources) and labels, checked. `before_decoding` is called
    with the source's `ArrayInfo` before its pixels are read (a memory check)."""
    info = describe_arrays(spec)
    if before_decoding is not None:
        before_decoding(info)
    if spec.name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.images.astype("float32") / 16.0, digits.target
    elif spec.name in KERAS_DATASETS:
        x, y = _load_keras_dataset(spec.name)
    elif spec.name == "npz":
        x, y = _load_npz(Path(spec.path))
    else:
        x, y = _load_folder(Path(spec.path), spec.input_size)
    check_arrays(x, y, info.source)
    return x, y


def check_arrays(x: np.ndarray, y: np.ndarray, source: str) -> None:
    """Refuse data no trial could learn from: non-numeric or non-finite pixels, labels that are not
    integer class ids, lengths that differ, a single class."""
    where = f"dataset.path: {source}"
    if x.dtype.kind not in "uif":
        raise DataError(f"{where}: x holds {x.dtype} values; images must be numbers (uint8 or float)")
    if x.ndim not in (3, 4) or 0 in x.shape[1:]:
        raise DataError(f"{where}: x has shape {x.shape}; expected (n, h, w) or (n, h, w, c) images")
    if len(x) == 0:
        raise DataError(f"{where}: x holds no images")
    if y.ndim != 1:
        raise DataError(f"{where}: y has shape {y.shape}; expected one label per image, shape (n,)")
    if len(x) != len(y):
        raise DataError(f"{where}: x holds {len(x)} images but y holds {len(y)} labels; they must match one to one")
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        bad = x.size - int(np.count_nonzero(finite))
        if bad:
            nan = int(np.count_nonzero(np.isnan(x)))
            images = int(np.count_nonzero(~finite.reshape(len(x), -1).all(axis=1)))
            raise DataError(
                f"{where}: x holds {nan:,} NaN and {bad - nan:,} infinite pixel values (in {images:,} of "
                f"{len(x):,} images); replace or drop those images"
            )
    _check_labels(y, where)


def _check_labels(y: np.ndarray, where: str) -> int:
    """Integer class ids (whole-number floats allowed), at least two classes; returns how many."""
    if y.dtype.kind not in "uif":
        raise DataError(f"{where}: y holds {y.dtype} values; labels must be integer class ids")
    if y.dtype.kind == "f":
        fractional = int(np.count_nonzero(~np.isfinite(y) | (y != np.round(y))))
        if fractional:
            raise DataError(f"{where}: y holds {fractional:,} labels that are not whole numbers; labels must be integer class ids")
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"{where}: every label is {classes[0]}; a classifier needs at least two classes")
    return len(classes)


def _load_keras_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    import keras

    try:
        (x, y), _ = getattr(keras.datasets, name).load_data()
    except Exception as error:  # the download's failure modes are many (DNS, HTTP, truncated file)
        raise DataError(
            f"dataset.name: could not load keras.datasets.{name} ({type(error).__name__}: {error}). It is "
            "downloaded once into ~/.keras/datasets; without a network, save the arrays as x/y in an .npz "
            "and use `name: npz` with `path:`"
        ) from None
    return x.astype("float32") / 255.0, y.reshape(-1)


def _npz_member(archive: zipfile.ZipFile, key: str) -> zipfile.ZipInfo | None:
    names = {info.filename: info for info in archive.infolist()}
    return names.get(f"{key}.npy") or names.get(key)


def _npz_headers(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of `x` and `y` as their headers state them, checked against dtype and member size, so
    that a forged header cannot make np.load allocate what the file does not hold."""
    with reported_as(DataError, f"read dataset.path {path}"):
        if not zipfile.is_zipfile(path):
            raise DataError(f"dataset.path: {path} is not an .npz archive (expected a zip of x.npy and y.npy, as np.savez writes)")
        try:
            with zipfile.ZipFile(path) as archive:
                members = {key: _npz_member(archive, key) for key in ("x", "y")}
                missing = sorted(key for key, member in members.items() if member is None)
                if missing:
                    raise DataError(f"dataset.path: {path} lacks array(s) {missing}; it needs `x` (images) and `y` (labels)")
                shapes = {key: _checked_header(archive, member, path, key) for key, member in members.items()}
        except zipfile.BadZipFile as error:
            raise DataError(f"dataset.path: {path} is not a readable .npz ({error})") from None
    x, y = shapes["x"], shapes["y"]
    if len(x) not in (3, 4) or 0 in x[1:]:
        raise DataError(f"dataset.path: {path}: x has shape {x}; expected (n, h, w) or (n, h, w, c) images")
    if len(y) not in (1, 2) or (len(y) == 2 and y[1] != 1):
        raise DataError(f"dataset.path: {path}: y has shape {y}; expected one label per image, shape (n,)")
    if x[0] != y[0]:
        raise DataError(f"dataset.path: {path}: x holds {x[0]} images but y holds {y[0]} labels; they must match one to one")
    if x[0] == 0:
        raise DataError(f"dataset.path: {path}: x holds no images")
    return x, y


def _checked_header(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path, key: str) -> tuple[int, ...]:
    from numpy.lib import format as npy

    with archive.open(member) as stream:
        try:
            version = npy.read_magic(stream)
            if version == (1, 0):
                shape, _, dtype = npy.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, _, dtype = npy.read_array_header_2_0(stream)
            else:
                raise DataError(f"dataset.path: {path}: {key} is stored in .npy format {version}; save it with np.savez")
        except ValueError as error:  # numpy's message for a malformed magic string or header
            raise DataError(f"dataset.path: {path}: {key} has no valid .npy header ({error})") from None
        header = stream.tell()
    if dtype.hasobject:
        raise DataError(f"dataset.path: {path}: {key} holds Python objects ({dtype}); save numbers, not objects")
    if dtype.kind not in "uif":
        what = "images" if key == "x" else "labels"
        raise DataError(f"dataset.path: {path}: {key} holds {dtype} values; {what} must be numbers")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > member.file_size - header:
        raise DataError(
            f"dataset.path: {path}: {key}'s header claims shape {shape} of {dtype} ({_size(claimed)}), but the "
            f"file holds only {_size(member.file_size - header)} for it; the file is damaged or forged"
        )
    return tuple(shape)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with reported_as(DataError, f"read dataset.path {path}"), np.load(path, allow_pickle=False) as arrays:
            x, y = arrays["x"], arrays["y"]
    except (ValueError, EOFError, zipfile.BadZipFile) as error:  # a member whose data is cut short or fails its CRC
        raise DataError(f"dataset.path: {path} is not a readable .npz ({error})") from None
    if x.dtype == np.uint8:
        x = x.astype("float32") / 255.0
    return x.astype("float32", copy=False), y.reshape(-1)


def _index_folder(path: Path) -> tuple[list[Path], list[int], list[str]]:
    """(files, labels, class names) in Keras' order: class folders sorted, each walked recursively with
    its files sorted. A class folder without images is refused: it would silently drop a class."""
    with reported_as(DataError, f"read dataset.path {path}"):
        classes = sorted(entry.name for entry in os.scandir(path) if entry.is_dir() and not entry.name.startswith("."))
        files, labels = [], []
        for label, name in enumerate(classes):
            found = [
                Path(root) / file
                for root, _, names in sorted(os.walk(path / name, onerror=_unreadable), key=lambda walked: walked[0])
                for file in sorted(names)
                if file.lower().endswith(IMAGE_FORMATS)
            ]
            if not found:
                raise DataError(f"dataset.path: {path / name} holds no images ({', '.join(IMAGE_FORMATS)}); remove the class folder or add its images")
            files += found
            labels += [label] * len(found)
    if len(classes) < 2:
        raise DataError(f"dataset.path: {path} must hold one sub-folder per class, at least two (found {len(classes)})")
    return files, labels, classes


def _unreadable(error: OSError) -> None:
    """os.walk skips a folder it cannot list, and its images with it: a class would silently shrink."""
    raise DataError(f"dataset.path: cannot read {error.filename}: {error.strerror}")


def _load_folder(path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode each file as RGB and resize it to `size` as Keras' image_dataset_from_directory does (same
    ops, same results), one file at a time so that a file that is not an image is named."""
    import tensorflow as tf

    files, labels, _ = _index_folder(path)
    images = np.empty((len(files), size, size, FOLDER_CHANNELS), dtype="float32")
    for i, file in enumerate(files):
        with reported_as(DataError, f"read {file}"):
            raw = file.read_bytes()
        try:
            image = tf.image.decode_image(raw, channels=FOLDER_CHANNELS, expand_animations=False)
        except tf.errors.InvalidArgumentError as error:  # the decoder's refusal of a corrupt or non-image file
            reason = error.message.split("}}")[-1].split("[Op:")[0].strip()
            raise DataError(f"dataset.path: {file} is not a readable image ({reason}); remove or replace it") from None
        images[i] = tf.image.resize(image, (size, size), method="bilinear").numpy()
    images /= 255.0
    return images, np.array(labels, dtype="int32")


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:,.0f} {unit}" if unit == "bytes" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1024
    return ""
