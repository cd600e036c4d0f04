"""`archsearch plan`: what a search would try and what each candidate costs, before anything trains;
and whether the machine has the memory for it (`check_memory`, which `run` asks too)."""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass

import pandas as pd

from search.data import Data, DataMemory, available_memory, check_preparation, data_memory, describe_arrays, describe_input, load_data
from search.data.memory import TRAINING_COPIES, gib
from search.errors import ResourceError
from search.models.budget import SIZE_KEYS, ModelMemory, largest_candidate, space_slots
from search.models.costs import model_costs
from search.models.proxies import BATCH as PROXY_BATCH
from search.models.proxies import score as proxy_score
from search.models.proxies import seeded_build
from search.models.registry import build_candidate
from search.spec.schema import Space, model_values

# What a trial process holds beyond the pages it shares with the server it is forked from: TensorFlow's
# kernels, graphs and allocator caches (measured: 0.3-0.5 GiB for the shipped spaces), rounded up.
RUNTIME_BYTES = 2**29


@dataclass(frozen=True)
class MemoryNeed:
    """The estimate a search is checked against: the data's copies while trials train, the largest
    candidate's training at the largest batch, the trial process's runtime, and what is free."""

    data: int
    model: ModelMemory
    batch_size: int
    slots: int
    available: int
    device: int | None = None  # free memory of the smallest visible GPU, where trials train on one

    def model_bytes(self, batch_size: int | None = None) -> int:
        return self.model.training_bytes(self.batch_size if batch_size is None else batch_size, self.slots)

    def host_bytes(self, batch_size: int | None = None) -> int:
        on_host = self.model_bytes(batch_size) if self.device is None else 0
        return self.data + on_host + RUNTIME_BYTES

    def fits(self, batch_size: int | None = None) -> bool:
        model_fits = self.device is None or self.model_bytes(batch_size) <= self.device
        return model_fits and self.host_bytes(batch_size) <= self.available


def memory_need(space: Space, data: Data | None = None, available: int | None = None) -> MemoryNeed:
    """The estimate for `space`; with its prepared `data` (a search about to start), the search process's
    copy is already in use and not counted again."""
    if data is None:
        spec = space.dataset
        memory: DataMemory = data_memory(describe_arrays(spec), spec)
        data_bytes = int(TRAINING_COPIES * memory.prepared)
        input_shape, num_classes = describe_input(spec)
    else:
        data_bytes = int((TRAINING_COPIES - 1) * (data.x_train.nbytes + data.x_val.nbytes + data.x_test.nbytes))
        input_shape, num_classes = data.input_shape, data.num_classes
    training = space.training
    return MemoryNeed(
        data=data_bytes,
        model=largest_candidate(space, input_shape, num_classes),
        batch_size=max(training.batch_size),
        slots=space_slots(space),
        available=available_memory() if available is None else available,
        device=gpu_memory(),
    )


def check_memory(space: Space, data: Data | None = None, available: int | None = None) -> None:
    """Refuse a search whose data and largest candidate would not fit in memory, naming the key to change.

    `run` calls it with the prepared `data` right after loading it; `plan` without, from the data's
    description (after `check_preparation`). Raises ResourceError."""
    need = memory_need(space, data, available)
    if need.fits():
        return
    raise ResourceError(_refusal(space, need))


def _refusal(space: Space, need: MemoryNeed) -> str:
    model = need.model
    shown = set(space.varying_axes()) | set(SIZE_KEYS[space.model.family][1])
    chosen = ", ".join(f"{k} {v}" for k, v in model.values.items() if k in shown and (k != "fc_units" or model.values.get("head") == "fc"))
    where = f"{gib(need.available)} is available" if need.device is None else \
        f"{gib(need.device)} is free on the GPU and {gib(need.available)} in memory"
    estimate = (
        f"the largest candidate ({space.model.family}{', ' + chosen if chosen else ''}: {model.params:,} parameters) "
        f"needs about {gib(need.model_bytes())} to train a batch of {need.batch_size} "
        f"({gib(need.model_bytes(0))} for parameters, gradients and optimizer slots, "
        f"{gib(need.model_bytes() - need.model_bytes(0))} for activations), and the data set's copies "
        f"{gib(need.data)}, but {where}"
    )
    if need.data + RUNTIME_BYTES > need.available:
        return f"dataset.subset: {estimate}; take fewer images (dataset.subset) or a smaller dataset.input_size"
    if need.fits(1):
        return f"training.batch_size: {estimate}; a batch of at most {_largest_batch(need)} fits"
    if need.model_bytes(0) >= need.model_bytes(1) - need.model_bytes(0):
        head_heavy = model.head_params > model.params / 2 and "fc_units" in space.model.axes()
        key = "model.fc_units" if head_heavy else SIZE_KEYS[space.model.family][0]
        return f"{key}: {estimate}; even one image does not fit: make the net smaller ({key})"
    return (f"dataset.input_size: {estimate}; even one image does not fit: lower dataset.input_size "
            f"or make the net smaller ({SIZE_KEYS[space.model.family][0]})")


def _largest_batch(need: MemoryNeed) -> int:
    low, high = 1, need.batch_size
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if need.fits(mid) else (low, mid - 1)
    return low


def gpu_memory() -> int | None:
    """Free bytes on the smallest visible GPU when TensorFlow trains on one (asked of nvidia-smi, so that
    this process does not claim the GPU); None on a CPU machine or when nvidia-smi cannot say."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU") or shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=20, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    free = [int(line) for line in result.stdout.split() if line.strip().isdigit()]
    return min(free) * 2**20 if free else None


def candidate_indices(space: Space, sample: int) -> list[int]:
    """Every grid index when the grid is small, else a seeded sample of `sample` of them, in grid order."""
    size = space.grid_size()
    if size <= sample:
        return list(range(size))
    return sorted(random.Random(space.search.seed).sample(range(size), sample))


def plan_candidates(space: Space, sample: int = 24, score: str | None = None) -> tuple[pd.DataFrame, str]:
    """One row per candidate: its varying axis values, parameters, mult-adds and FLOPs; with `score`, that
    zero-cost proxy's score too (untrained, each candidate seeded by the search's seed, on the first
    `PROXY_BATCH` training images), best first. A space whose data or largest candidate would not fit in
    memory is refused first, before any candidate is built."""
    check_preparation(describe_arrays(space.dataset), space.dataset)
    check_memory(space)
    input_shape, num_classes = describe_input(space.dataset)
    batch = proxy_batch(space) if score else None
    varying = space.varying_names()
    candidates, note = _sampled_structures(space, sample) if space.model.searched else _grid_candidates(space, sample)
    rows = []
    for number, values in candidates:
        model = seeded_build(lambda: build_candidate(space.model, model_values(values), input_shape=input_shape, num_classes=num_classes),
                             space.search.seed)
        rows.append({"candidate": number, **{k: values[k] for k in varying}, **model_costs(model)})
        if batch is not None:
            rows[-1][score] = proxy_score(model, score, *batch)
    table = pd.DataFrame(rows)
    shape = "x".join(map(str, input_shape))
    note = f"{note}, input {shape}, {num_classes} classes"
    if score:
        table = table.sort_values(score, ascending=False, kind="stable")
        note += f", ranked by {score} (untrained, {len(batch[1])} training images; higher first)"
    return table, note


def proxy_batch(space: Space):
    """The images a proxy scores every candidate on: the first of the training part (fixed by the split)."""
    data = load_data(space.dataset)
    return data.x_train[:PROXY_BATCH], data.y_train[:PROXY_BATCH]


def _grid_candidates(space: Space, sample: int) -> tuple[list[tuple[int, dict]], str]:
    indices = candidate_indices(space, sample)
    size = space.grid_size()
    note = f"all {size} candidates" if len(indices) == size else f"{len(indices)} of {size} candidates (seeded sample)"
    return [(index + 1, space.candidate(index)) for index in indices], note


def _sampled_structures(space: Space, sample: int) -> tuple[list[tuple[int, dict]], str]:
    """A searched structure (cells) cannot be listed: show a seeded sample of what a random first trial could be."""
    rng = random.Random(space.search.seed)
    axes_grid = space.grid_size() // space.model.structure_count()
    candidates = [(n, space.candidate(rng.randrange(axes_grid)) | space.model.sample_structure(rng)) for n in range(1, sample + 1)]
    return candidates, f"{sample} random samples of {space.model.structure_count():.1e} {space.model.structure_unit}"
