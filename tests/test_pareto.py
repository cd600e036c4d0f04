"""Pareto fronts, crowding distance and hypervolume against their definitions."""

import itertools

import numpy as np
import pytest

from search.reporting.pareto import crowding, dominates, fronts, hypervolume


def test_dominance_needs_no_worse_everywhere_and_better_somewhere():
    assert dominates(np.array([1, 2]), np.array([1, 3]))
    assert not dominates(np.array([1, 3]), np.array([1, 3])), "equal points do not dominate each other"
    assert not dominates(np.array([0, 4]), np.array([1, 3])), "a trade-off is no domination"


def test_fronts_peel_off_by_domination_on_random_points():
    points = np.random.default_rng(3).integers(0, 6, size=(40, 3)).astype(float)
    points[5, 1] = np.nan
    found = fronts(points)
    flat = np.concatenate(found)
    assert sorted(flat) == [i for i in range(40) if i != 5], "every finite point in exactly one front"
    for k, front in enumerate(found):
        later = np.concatenate(found[k:])
        assert not any(dominates(points[j], points[i]) for i in front for j in later), f"front {k} is dominated"
        if k:
            assert all(any(dominates(points[j], points[i]) for j in found[k - 1]) for i in front), f"front {k} skips one"


def test_crowding_gives_the_extremes_infinity_and_the_inner_points_their_neighbours_gaps():
    front = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    distance = crowding(front)
    assert np.isinf(distance[0]) and np.isinf(distance[3])
    assert distance[1] == pytest.approx((3 - 0) / 4 + (4 - 1) / 4)
    assert distance[2] == pytest.approx((4 - 1) / 4 + (2 - 0) / 4)


def test_hypervolume_of_a_staircase_and_of_what_it_ignores():
    reference = np.array([4.0, 4.0])
    staircase = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(staircase, reference) == pytest.approx(3 + 2 + 1)
    beaten_and_outside = np.vstack([staircase, [[2.5, 2.5], [5.0, 0.0]]])
    assert hypervolume(beaten_and_outside, reference) == pytest.approx(6.0)
    # against a fine grid count of the dominated cells
    points = np.random.default_rng(1).uniform(0, 4, size=(12, 2))
    grid = (np.arange(400) + 0.5) / 100
    covered = sum(any(p[0] <= x and p[1] <= y for p in points) for x, y in itertools.product(grid, grid))
    assert hypervolume(points, reference) == pytest.approx(covered / 100**2, abs=0.05)
