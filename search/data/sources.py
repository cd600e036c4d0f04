"""Data sets by name -> raw image and label arrays (no split, no scaling beyond [0, 1]).

The embedded default is scikit-learn's handwritten digits (1,797 8x8 images), so every space runs
without a network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from search.errors import DataError
from search.spec.schema import Dataset

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")


def describe_input(spec: Dataset) -> tuple[tuple[int, int, int], int]:
    """(input shape, number of classes) without loading the pixels where they are known."""
    known = {"digits": (1, 10), "mnist": (1, 10), "fashion_mnist": (1, 10), "cifar10": (3, 10), "cifar100": (3, 100)}
    if spec.name in known:
        channels, classes = known[spec.name]
        return (spec.input_size, spec.input_size, channels), classes
    x, y = load_arrays(spec)
    channels = 1 if x.ndim == 3 else x.shape[-1]
    return (spec.input_size, spec.input_size, channels), len(np.unique(y))


def load_arrays(spec: Dataset) -> tuple[np.ndarray, np.ndarray]:
    if spec.name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.images.astype("float32") / 16.0, digits.target
    if spec.name in KERAS_DATASETS:
        return _load_keras_dataset(spec.name)
    if spec.name == "npz":
        return _load_npz(Path(spec.path))
    if spec.name == "folder":
        return _load_folder(Path(spec.path), spec.input_size)
    raise DataError(f"dataset.name: unknown data set {spec.name!r}")


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


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise DataError(f"dataset.path: {path} lacks array(s) {sorted(missing)}; it needs `x` (images) and `y` (labels)")
            x, y = arrays["x"], arrays["y"]
    except (OSError, ValueError) as error:
        raise DataError(f"dataset.path: {path} is not a readable .npz ({error})") from None
    if x.dtype == np.uint8:
        x = x.astype("float32") / 255.0
    return x.astype("float32"), y.reshape(-1)


def _load_folder(path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    import keras

    try:
        ds = keras.utils.image_dataset_from_directory(path, batch_size=None, shuffle=False, image_size=(size, size))
    except ValueError as error:
        raise DataError(f"dataset.path: {path}: {error}") from None
    images, labels = zip(*((image.numpy(), label.numpy()) for image, label in ds))
    return np.stack(images) / 255.0, np.array(labels)
