"""How much memory a data set takes once prepared, and how much the machine has free.

A data set is refused before its pixels are read when preparing it would not fit: an `input_size` of
1024 on the digits turns 0.5 MB into 7 GiB per copy, and preparing it makes several copies. The
factors below count the copies `split.load_data` and the trial processes make (measured on these
machines with `resource.getrusage`; see the README's *Memory*), rounded up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from search.data.sources import ArrayInfo
from search.errors import ResourceError
from search.spec.consistency import OFFICIAL_TEST_SETS
from search.spec.schema import Dataset

OFFICIAL_TEST_IMAGES = 10_000  # the test part of each of OFFICIAL_TEST_SETS

MEMINFO = Path("/proc/meminfo")
# Copies of the data set at input size alive at once while `load_data` prepares it (resize output,
# the training split's statistics, the split itself), on top of the raw arrays.
PREPARATION_COPIES = 4.0
# Gaussian corruption noise: float64 draws for every pixel, cast and added (measured: one more copy).
NOISE_COPIES = 2.0
# Copies alive while trials train: the search process's prepared split, and in the trial process the
# split read back, the tf.data tensors made from it and their cache.
TRAINING_COPIES = 4.0


def available_memory() -> int:
    """Bytes the kernel could give this process now without swapping: MemAvailable, else free pages."""
    try:
        text = MEMINFO.read_text()
    except FileNotFoundError:  # not Linux
        text = ""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class DataMemory:
    """Bytes the data set takes: `prepared` is one copy of the images used (subset and test part) at input size,
    `preparation` the peak while `load_data` builds it, `training` what its copies hold while trials train."""

    images: int
    used: int
    prepared: int
    preparation: int
    training: int


def data_memory(info: ArrayInfo, spec: Dataset) -> DataMemory:
    """The data set's memory at `spec.input_size`, as float32, with the copies the pipeline makes."""
    per_image = spec.input_size * spec.input_size * info.channels * 4
    official = spec.name in OFFICIAL_TEST_SETS
    test = OFFICIAL_TEST_IMAGES if official else round(info.images * spec.test_split)
    left = info.images - (0 if official else test)
    used = (spec.subset if spec.subset is not None and spec.subset < left else left) + test  # the test part is prepared too
    every = used * per_image  # only the images used are resized
    copies = PREPARATION_COPIES + (NOISE_COPIES if spec.corruption.noise else 0.0)
    raw_test = OFFICIAL_TEST_IMAGES * info.height * info.width * info.channels * 4 if official else 0
    raw = 2 * (info.raw_bytes + raw_test)  # the loaders' arrays (the training part's, an official test part's) and their scaling's temporary
    return DataMemory(info.images, used, used * per_image, raw + copies * every, TRAINING_COPIES * used * per_image)


def check_preparation(info: ArrayInfo, spec: Dataset, available: int | None = None) -> DataMemory:
    """Refuse a data set whose preparation would not fit in `available` bytes (default: free now)."""
    memory = data_memory(info, spec)
    free = available_memory() if available is None else available
    if memory.preparation > free:
        side = spec.input_size
        fits = _largest_side_that_fits(info, spec, free)
        hint = f"at most {fits} fits" if fits else "not even 1 fits; use a smaller data set"
        raise ResourceError(
            f"dataset.input_size: preparing {info.source} ({info.images:,} images) at {side}x{side}x{info.channels} "
            f"takes about {gib(memory.preparation)} ({gib(memory.prepared)} per copy of the images used), but "
            f"{gib(free)} is available; lower dataset.input_size ({hint})"
        )
    return memory


def _largest_side_that_fits(info: ArrayInfo, spec: Dataset, free: int) -> int:
    low, high = 0, spec.input_size
    while low < high:
        mid = (low + high + 1) // 2
        if data_memory(info, spec.model_copy(update={"input_size": mid})).preparation <= free:
            low = mid
        else:
            high = mid - 1
    return low


def gib(n_bytes: float) -> str:
    """Bytes in the unit a person reads them in."""
    if n_bytes >= 2**40:
        return f"{n_bytes / 2**40:,.1f} TiB"
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:,.1f} GiB"
    return f"{n_bytes / 2**20:,.0f} MiB"
