"""Data sets by name -> arrays -> a seeded train/validation split -> tf.data pipelines.

The embedded default is scikit-learn's handwritten digits (1,797 8x8 images), so every space runs
without a network. The split depends only on the seed, and its hash is recorded with every run, so two
runs that claim the same data can be checked to have used the same data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.space import Augmentation, Dataset

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")


class DataError(Exception):
    """The data named in a space file cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class Data:
    """Standardised, resized arrays of one seeded split; pipelines are made per trial (batch size varies)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    fingerprint: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def save(self, path: Path) -> None:
        """Write the prepared split once, for the trial processes to read instead of re-preparing it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x_train=self.x_train, y_train=self.y_train, x_val=self.x_val, y_val=self.y_val,
                 num_classes=self.num_classes, fingerprint=self.fingerprint)

    @classmethod
    def load(cls, path: Path) -> Data:
        with np.load(path, allow_pickle=False) as arrays:
            return cls(
                x_train=arrays["x_train"],
                y_train=arrays["y_train"],
                x_val=arrays["x_val"],
                y_val=arrays["y_val"],
                num_classes=int(arrays["num_classes"]),
                fingerprint=str(arrays["fingerprint"]),
            )

    def describe(self) -> dict[str, object]:
        """What a methods section needs to know about the data, for run params."""
        return {
            "train_samples": len(self.y_train),
            "validation_samples": len(self.y_val),
            "num_classes": self.num_classes,
            "data_hash": self.fingerprint,
        }


def load_data(spec: Dataset, seed: int) -> Data:
    """Load the named data, subsample and split it with `seed`, resize to `input_size`, corrupt, standardise."""
    x, y = _load_arrays(spec)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or len(x) != len(y):
        raise DataError(f"dataset.path: expected x of shape (n, h, w[, c]) and y of shape (n,), got {x.shape} and {y.shape}")
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(y))
    if spec.subset is not None:
        if spec.subset > len(y):
            raise DataError(f"dataset.subset: {spec.subset} is more than the {len(y)} images of {spec.name}")
        order = order[: spec.subset]
    n_val = int(round(len(order) * spec.validation_split))
    if n_val < 1 or n_val >= len(order):
        raise DataError(
            f"dataset.validation_split: {spec.validation_split} of {len(order)} images leaves an empty split"
        )
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    classes, y = np.unique(y, return_inverse=True)
    x = _resize(x.astype("float32"), spec.input_size)
    corruption_rng = np.random.default_rng([seed, 1])  # its own stream: corrupting does not move the split
    if spec.corruption.scale < 1:
        x = _shrink_onto_canvas(x, spec.corruption.scale, corruption_rng)
    mean = x[train_idx].mean(axis=(0, 1, 2), keepdims=True)
    std = x[train_idx].std(axis=(0, 1, 2), keepdims=True) + 1e-7
    x = (x - mean) / std
    if spec.corruption.noise:
        x = x + corruption_rng.normal(0.0, spec.corruption.noise, size=x.shape).astype(x.dtype)
    digest = hashlib.sha256()
    for array in (x, y, train_idx, val_idx):
        digest.update(np.ascontiguousarray(array).tobytes())
    return Data(
        x_train=x[train_idx],
        y_train=y[train_idx].astype("int32"),
        x_val=x[val_idx],
        y_val=y[val_idx].astype("int32"),
        num_classes=len(classes),
        fingerprint=digest.hexdigest()[:16],
    )


def describe_input(spec: Dataset) -> tuple[tuple[int, int, int], int]:
    """(input shape, number of classes) without loading the pixels where they are known."""
    known = {"digits": (1, 10), "mnist": (1, 10), "fashion_mnist": (1, 10), "cifar10": (3, 10), "cifar100": (3, 100)}
    if spec.name in known:
        channels, classes = known[spec.name]
        return (spec.input_size, spec.input_size, channels), classes
    x, y = _load_arrays(spec)
    channels = 1 if x.ndim == 3 else x.shape[-1]
    return (spec.input_size, spec.input_size, channels), len(np.unique(y))


def pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, *, seed: int, shuffle: bool, augmentation: Augmentation | None = None):
    """A cached, prefetched tf.data pipeline; training pipelines reshuffle each epoch from `seed`."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    augmenter = _augmenter(augmentation, x.shape[1:], seed) if augmentation else None
    if augmenter is not None:
        ds = ds.map(lambda images, labels: (augmenter(images, training=True), labels))
    return ds.prefetch(tf.data.AUTOTUNE)


def _augmenter(spec: Augmentation, shape: tuple[int, ...], seed: int):
    import keras

    steps = []
    if spec.flip:
        steps.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if spec.crop_padding:
        steps.append(keras.layers.ZeroPadding2D(spec.crop_padding))
        steps.append(keras.layers.RandomCrop(shape[0], shape[1], seed=seed))
    if spec.noise:
        steps.append(keras.layers.GaussianNoise(spec.noise, seed=seed))
    return keras.Sequential(steps, name="augmentation") if steps else None


def _load_arrays(spec: Dataset) -> tuple[np.ndarray, np.ndarray]:
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


def _shrink_onto_canvas(x: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Each image at `scale` of its size, at a random place on a blank canvas: position must be learned."""
    size = x.shape[1]
    inner = max(1, round(size * scale))
    small = _resize(x, inner)
    canvas = np.zeros_like(x)
    offsets = rng.integers(0, size - inner + 1, size=(len(x), 2))
    for image, patch, (top, left) in zip(canvas, small, offsets):
        image[top : top + inner, left : left + inner] = patch
    return canvas


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    if x.shape[1:3] == (size, size):
        return x
    import tensorflow as tf

    return tf.image.resize(x, (size, size)).numpy()
