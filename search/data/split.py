"""Arrays -> a seeded train/validation/test split, resized, corrupted and standardised -> tf.data pipelines.

The split is fixed by `dataset.seed` alone, never by a model seed: every replicate and every search of
one data set trains, selects and tests on the same images. The test part is the data set's own where it
has one (MNIST's, Fashion-MNIST's and CIFAR's 10,000), else `test_split` of the data, drawn first; the rest is
permuted once and a space uses its first `subset` images, validation at the end. Two spaces that differ
only in `subset` therefore nest: the smaller one's images all lie in the larger one's training part, so a
proxy search never sees what its transfer is judged on (`leak` checks it). Each part's index set is hashed,
and the hashes are recorded with every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.data.memory import check_preparation
from search.data.sources import IDX_SETS, OFFICIAL_TEST_SETS, describe_arrays, describe_test_arrays, load_arrays, load_test_arrays, training_labels
from search.errors import DataError, StateError, reported_as
from search.spec.schema import Augmentation, Dataset

PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """Which images of the source each part holds: indices into its (training) arrays, or, for an
    official test part, into its test arrays (`official_test`). `source` names the images the indices
    point into, so that index sets of two different sources are never compared."""

    source: str
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    official_test: bool

    def hashes(self) -> dict[str, str]:
        """Each part's index set as a short hash, for run params: equal hashes, equal images."""
        return {f"{part}_hash": _index_hash(self.source, part == "test" and self.official_test, getattr(self, part)) for part in PARTS}

    def seen(self) -> np.ndarray:
        """The source images a search on this split learns or selects from (training and validation)."""
        return np.union1d(self.train, self.validation)

    def judged(self) -> np.ndarray:
        """The source images results on this split are judged on (validation and, unless official, test)."""
        return self.validation if self.official_test else np.union1d(self.validation, self.test)


def _index_hash(source: str, official: bool, indices: np.ndarray) -> str:
    digest = hashlib.sha256(f"{source}|{'official-test' if official else 'data'}|".encode())
    digest.update(memoryview(np.ascontiguousarray(np.sort(indices).astype("<i8"))).cast("B"))
    return digest.hexdigest()[:16]


def source_name(spec: Dataset) -> str:
    """What identifies the images a split indexes: for MNIST and Fashion-MNIST, their training labels'
    hash (the same images whether found in Keras' cache, Debian's folder or a `dataset.path`); else the
    set's name, and its path where it has one."""
    if spec.name in IDX_SETS:
        labels = training_labels(spec)
        if labels is not None:
            return f"{spec.name}:{hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()[:16]}"
    return spec.name if spec.path is None else f"{spec.name}:{Path(spec.path).resolve()}"


def split_indices(spec: Dataset, total: int, official_test: int | None = None) -> Split:
    """The split of `total` images by `spec` (its seed, test_split, subset, validation_split); with
    `official_test` (the size of the data set's own test part) that part is the test set."""
    order = np.random.RandomState(spec.seed).permutation(total)
    if official_test is None:
        n_test = int(round(total * spec.test_split))
        test, order = order[:n_test], order[n_test:]
    else:
        test = np.arange(official_test)
    if spec.subset is not None:
        if spec.subset > len(order):
            held = "" if official_test is not None or not len(test) else f" ({len(test)} are held out for testing)"
            raise DataError(f"dataset.subset: {spec.subset} is more than the {len(order)} images of {spec.name} left for training and validation{held}")
        order = order[: spec.subset]
    n_val = int(round(len(order) * spec.validation_split))
    n_train = len(order) - n_val
    return Split(source_name(spec), np.sort(order[:n_train]), np.sort(order[n_train:]), np.sort(test), official_test is not None)


def planned_split(spec: Dataset) -> Split:
    """The split `load_data` will make, from the sizes the source's headers give (no pixels read)."""
    official = describe_test_arrays(spec).images if spec.name in OFFICIAL_TEST_SETS else None
    return split_indices(spec, describe_arrays(spec).images, official)


# What ends a leak: spaces nest when they share the split and the smaller is no larger than the other's training part
LEAK_REMEDY = "give both the same dataset.seed and test_split, and the search a subset no larger than the other's training part"


def leak(search: Dataset, judged: Dataset) -> str | None:
    """How many images a search on `search` learns or selects from that results on `judged` are judged
    on (its validation and test parts), in words; None when they share none (or no source)."""
    if source_name(search) != source_name(judged):
        return None
    seen, used = planned_split(search), planned_split(judged)
    overlap = np.intersect1d(seen.seen(), used.judged())  # an official test part is never in `seen`
    if not len(overlap):
        return None
    return (f"{len(overlap):,} of the {len(seen.seen()):,} images the search trains and selects on are among the "
            f"{len(used.judged()):,} validation and test images the results are judged on")


@dataclass(frozen=True)
class Data:
    """Standardised, resized arrays of one seeded split; pipelines are made per trial (batch size varies).
    The test part may be empty (`test_split: 0` on a data set without its own)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    fingerprint: str
    hashes: dict[str, str]  # each part's index-set hash (`Split.hashes`)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def has_test(self) -> bool:
        return len(self.y_test) > 0

    def save(self, path: Path) -> None:
        """Write the prepared split once, for the trial processes to read instead of re-preparing it."""
        with reported_as(StateError, f"write the prepared data {path}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, x_train=self.x_train, y_train=self.y_train, x_val=self.x_val, y_val=self.y_val, x_test=self.x_test,
                     y_test=self.y_test, num_classes=self.num_classes, fingerprint=self.fingerprint, **self.hashes)

    @classmethod
    def load(cls, path: Path) -> Data:
        with np.load(path, allow_pickle=False) as arrays:
            return cls(
                **{key: arrays[key] for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")},
                num_classes=int(arrays["num_classes"]),
                fingerprint=str(arrays["fingerprint"]),
                hashes={f"{part}_hash": str(arrays[f"{part}_hash"]) for part in PARTS},
            )

    def describe(self) -> dict[str, object]:
        """What a methods section needs to know about the data, for run params."""
        return {
            "train_samples": len(self.y_train),
            "validation_samples": len(self.y_val),
            "test_samples": len(self.y_test),
            "num_classes": self.num_classes,
            "data_hash": self.fingerprint,
            **self.hashes,
        }


def load_data(spec: Dataset, *, available: int | None = None) -> Data:
    """Load the named data, split it by `spec.seed` (`split_indices`), resize to `input_size`, corrupt,
    standardise by the training part's statistics.

    Unusable data (see `sources.check_arrays`), a split with an empty part or a single training class,
    and data whose preparation would not fit in `available` bytes (default: what the machine has free
    now) are refused before the pixels are read, let alone resized."""
    x, y = load_arrays(spec, before_decoding=lambda info: check_preparation(info, spec, available))
    official = load_test_arrays(spec) if spec.name in OFFICIAL_TEST_SETS else None
    split = split_indices(spec, len(y), None if official is None else len(official[1]))
    _check_split(spec, split, y)
    x_source, y_test = (x, y[split.test]) if official is None else (official[0], official[1][split.test])
    parts = [x[split.train], x[split.validation], x_source[split.test]]
    labels = [y[split.train], y[split.validation], y_test]
    classes = np.unique(np.concatenate(labels))
    sizes = np.cumsum([len(part) for part in parts])[:-1]
    images = np.concatenate([p if p.ndim == 4 else p[..., None] for p in parts]).astype("float32", copy=False)
    images = _pad(images, spec.input_size) if spec.resize == "pad" else _resize(images, spec.input_size)
    corruption_rng = np.random.default_rng([spec.seed, 1])  # its own stream: corrupting does not move the split
    if spec.corruption.scale < 1:
        images = _shrink_onto_canvas(images, spec.corruption.scale, corruption_rng)
    train = images[: sizes[0]]
    mean = train.mean(axis=(0, 1, 2), keepdims=True)
    std = train.std(axis=(0, 1, 2), keepdims=True) + 1e-7
    if not images.flags.writeable:  # standardised in place below
        images = images.copy()
    images -= mean  # in place: the same values as (x - mean) / std, without two more copies of the data set
    images /= std
    if spec.corruption.noise:
        images = images + corruption_rng.normal(0.0, spec.corruption.noise, size=images.shape).astype(images.dtype)
    labels = [np.searchsorted(classes, part).astype("int32") for part in labels]
    digest = hashlib.sha256()
    for array in (images, *labels, split.train, split.validation, split.test):
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    x_train, x_val, x_test = np.split(images, sizes)
    return Data(x_train, labels[0], x_val, labels[1], x_test, labels[2], num_classes=len(classes),
                fingerprint=digest.hexdigest()[:16], hashes=split.hashes())


def _check_split(spec: Dataset, split: Split, y: np.ndarray) -> None:
    """Training and validation need images, a test part that was asked for too, and training needs two
    classes, or every trial would fail (or "finish" at chance) only once it trains."""
    used = len(split.train) + len(split.validation)
    key = "dataset.subset" if spec.subset is not None else "dataset.validation_split"
    if not len(split.validation) or not len(split.train):
        raise DataError(
            f"{key}: {used} images with validation_split {spec.validation_split} give {len(split.train)} training and "
            f"{len(split.validation)} validation images; each part needs at least one"
        )
    if spec.test_split and not split.official_test and not len(split.test):
        raise DataError(f"dataset.test_split: {spec.test_split} of {len(y)} images holds no image; raise it, or set it to 0 for no test part")
    if len(np.unique(y[split.train])) < 2:
        raise DataError(
            f"{key}: the {len(split.train)} training images of this split are all of one class; a classifier needs at least "
            "two (take a larger subset or a different dataset.seed)"
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


def _pad(x: np.ndarray, size: int) -> np.ndarray:
    """Centre each image in a size x size frame of zeros (the background of MNIST-like images), pixels unscaled."""
    height, width = x.shape[1:3]
    if height > size or width > size:
        raise DataError(f"dataset.resize: 'pad' cannot fit {height}x{width} images into dataset.input_size {size}; "
                        f"use 'bilinear' or an input_size of at least {max(height, width)}")
    top, left = (size - height) // 2, (size - width) // 2
    return np.pad(x, ((0, 0), (top, size - height - top), (left, size - width - left), (0, 0)))


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    if x.shape[1:3] == (size, size):
        return x
    import tensorflow as tf

    return tf.image.resize(x, (size, size)).numpy()
