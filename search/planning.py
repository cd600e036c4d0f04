"""`archsearch plan`: what a search would try and what each candidate costs, before anything trains."""

from __future__ import annotations

import random

import pandas as pd

from search.space import Space, model_values


def candidate_indices(space: Space, sample: int) -> list[int]:
    """Every grid index when the grid is small, else a seeded sample of `sample` of them, in grid order."""
    size = space.grid_size()
    if size <= sample:
        return list(range(size))
    return sorted(random.Random(space.search.seed).sample(range(size), sample))


def plan_candidates(space: Space, sample: int = 24) -> tuple[pd.DataFrame, str]:
    """One row per candidate: its varying axis values, parameters, mult-adds and FLOPs."""
    import keras

    from search.costs import model_costs
    from search.data import describe_input
    from search.families import build_model

    input_shape, num_classes = describe_input(space.dataset)
    varying = list(space.varying_axes())
    rows = []
    indices = candidate_indices(space, sample)
    for index in indices:
        values = space.candidate(index)
        keras.backend.clear_session()
        model = build_model(space.model.family, input_shape=input_shape, num_classes=num_classes, **model_values(values))
        rows.append({"candidate": index + 1, **{k: values[k] for k in varying}, **model_costs(model)})
    size = space.grid_size()
    note = f"all {size} candidates" if len(indices) == size else f"{len(indices)} of {size} candidates (seeded sample)"
    shape = "x".join(map(str, input_shape))
    return pd.DataFrame(rows), f"{note}, input {shape}, {num_classes} classes"
