"""Pareto fronts of points with several objectives, all minimised (negate a score to maximise it).

Non-dominated sorting and crowding distance as NSGA-II defines them (Deb et al. 2002), and the 2-D
hypervolume: what `compare --pareto`, the cost figure's front and a multi-objective search share.
"""

from __future__ import annotations

import numpy as np


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """`a` is no worse than `b` in every objective and better in one."""
    return bool(np.all(a <= b) and np.any(a < b))


def fronts(points: np.ndarray) -> list[np.ndarray]:
    """The indices of `points` (n x m) front by front: the first front is dominated by no point, the
    second only by points of the first, and so on. Rows with a NaN belong to no front."""
    points = np.asarray(points, dtype=float)
    known = [i for i in range(len(points)) if np.all(np.isfinite(points[i]))]
    beaten_by = {i: 0 for i in known}  # how many points dominate i
    beats: dict[int, list[int]] = {i: [] for i in known}
    for i in known:
        for j in known:
            if i != j and dominates(points[i], points[j]):
                beats[i].append(j)
                beaten_by[j] += 1
    result, current = [], [i for i in known if beaten_by[i] == 0]
    while current:
        result.append(np.array(sorted(current), dtype=int))
        following = []
        for i in current:
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        current = following
    return result


def crowding(points: np.ndarray) -> np.ndarray:
    """Each point's crowding distance within its front (`points`: that front's rows): the sum over the
    objectives of the gap between its two neighbours, scaled by the objective's range; the extremes infinite."""
    points = np.asarray(points, dtype=float)
    distance = np.zeros(len(points))
    if len(points) <= 2:
        return np.full(len(points), np.inf)
    for column in points.T:
        order = np.argsort(column, kind="stable")
        span = column[order[-1]] - column[order[0]]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return distance


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The area two-objective `points` dominate, bounded by `reference` (worse than every point that
    counts); points beyond it add nothing."""
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError("hypervolume is computed for two objectives")
    inside = points[np.all(points < reference, axis=1)]
    area, ceiling = 0.0, reference[1]
    for x, y in inside[np.lexsort((inside[:, 1], inside[:, 0]))]:  # by the first objective, then the second
        if y < ceiling:
            area += (reference[0] - x) * (ceiling - y)
            ceiling = y
    return float(area)
