"""`archsearch plan`: what a search would try and what each candidate costs, before anything trains."""

from __future__ import annotations

import random

import keras
import pandas as pd

from search.data import describe_input
from search.models.costs import model_costs
from search.models.registry import build_candidate
from search.spec.schema import Space, model_values


def candidate_indices(space: Space, sample: int) -> list[int]:
    """Every grid index when the grid is small, else a seeded sample of `sample` of them, in grid order."""
    size = space.grid_size()
    if size <= sample:
        return list(range(size))
    return sorted(random.Random(space.search.seed).sample(range(size), sample))


def plan_candidates(space: Space, sample: int = 24) -> tuple[pd.DataFrame, str]:
    """One row per candidate: its varying axis values, parameters, mult-adds and FLOPs."""
    input_shape, num_classes = describe_input(space.dataset)
    varying = space.varying_names()
    candidates, note = _sampled_structures(space, sample) if space.model.searched else _grid_candidates(space, sample)
    rows = []
    for number, values in candidates:
        keras.backend.clear_session()
        model = build_candidate(space.model, model_values(values), input_shape=input_shape, num_classes=num_classes)
        rows.append({"candidate": number, **{k: values[k] for k in varying}, **model_costs(model)})
    shape = "x".join(map(str, input_shape))
    return pd.DataFrame(rows), f"{note}, input {shape}, {num_classes} classes"


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
