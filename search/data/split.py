"""Arrays -> a seeded train/validation split, resized, corrupted and standardised -> tf.data pipelines.

The split depends only on the seed, and its hash is recorded with every run, so two runs that claim
the same data can be checked to have used the same data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.data.memory import check_preparation
from search.data.sources import load_arrays
from search.errors import DataError, StateError, reported_as
from search.spec.schema import Augmentation, Dataset


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
        with reported_as(StateError, f"write the prepared data {path}"):
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


def load_data(spec: Dataset, seed: int, *, available: int | None = None) -> Data:
    """Load the named data, subsample and split it with `seed`, resize to `input_size`, corrupt, standardise.

    Unusable data (see `sources.check_arrays`), a split with an empty side or a single class, and data
    whose preparation would not fit in `available` bytes (default: what the machine has free now) are
    refused before the pixels are read, let alone resized."""
    x, y = load_arrays(spec, before_decoding=lambda info: check_preparation(info, spec, available))
    if x.ndim == 3:
        x = x[..., None]
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(y))
    if spec.subset is not None:
        if spec.subset > len(y):
            raise DataError(f"dataset.subset: {spec.subset} is more than the {len(y)} images of {spec.name}")
        order = order[: spec.subset]
    n_val = int(round(len(order) * spec.validation_split))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    _check_split(spec, len(y), y[train_idx], n_val)
    classes, y = np.unique(y, return_inverse=True)
    x = _resize(x.astype("float32", copy=False), spec.input_size)
    corruption_rng = np.random.default_rng([seed, 1])  # its own stream: corrupting does not move the split
    if spec.corruption.scale < 1:
        x = _shrink_onto_canvas(x, spec.corruption.scale, corruption_rng)
    mean = x[train_idx].mean(axis=(0, 1, 2), keepdims=True)
    std = x[train_idx].std(axis=(0, 1, 2), keepdims=True) + 1e-7
    if not x.flags.writeable:  # standardised in place below
        x = x.copy()
    x -= mean  # in place: the same values as (x - mean) / std, without two more copies of the data set
    x /= std
    if spec.corruption.noise:
        x = x + corruption_rng.normal(0.0, spec.corruption.noise, size=x.shape).astype(x.dtype)
    digest = hashlib.sha256()
    for array in (x, y, train_idx, val_idx):
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return Data(
        x_train=x[train_idx],
        y_train=y[train_idx].astype("int32"),
        x_val=x[val_idx],
        y_val=y[val_idx].astype("int32"),
        num_classes=len(classes),
        fingerprint=digest.hexdigest()[:16],
    )


def _check_split(spec: Dataset, total: int, y_train: np.ndarray, n_val: int) -> None:
    """Both sides of the split need images, and training needs two classes, or every trial would fail
    (or "finish" at chance) only once it trains."""
    used = spec.subset if spec.subset is not None else total
    n_train = used - n_val
    key = "dataset.subset" if spec.subset is not None else "dataset.validation_split"
    if n_val < 1 or n_train < 1:
        raise DataError(
            f"{key}: {used} images with validation_split {spec.validation_split} give {n_train} training and "
            f"{n_val} validation images; each split needs at least one"
        )
    if len(np.unique(y_train)) < 2:
        raise DataError(
            f"{key}: the {n_train} training images of this split are all of one class; a classifier needs at least "
            "two (take a larger subset or a different split)"
        )


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
