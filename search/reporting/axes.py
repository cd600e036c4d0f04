"""Axes that read on a page: a cost axis that is logarithmic only over a decade or more and otherwise
ticks every value exactly (`SIFormatter`), and point labels placed clear of each other, of the points and
of the Pareto line (`place_labels`)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import Formatter, MaxNLocator


def cost_scale(axis, costs: np.ndarray) -> None:
    """Log only where the costs span a decade or more; else linear with ticks that tell neighbours apart."""
    positive = costs[costs > 0]
    if len(positive) == len(costs) > 1 and positive.max() / positive.min() >= 10:
        axis.set_xscale("log")
        return
    axis.xaxis.set_major_locator(MaxNLocator(nbins=5))
    axis.xaxis.set_major_formatter(SIFormatter())


SI = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


class SIFormatter(Formatter):
    """Ticks in k/M/G with the fewest decimals that write every tick exactly (12.719M, 12.720M; 450k), in a
    smaller unit where that would take more than three (146,098.5): no offset or ×10^n to read off a corner,
    and no two ticks alike."""

    ticks: tuple[float, ...] = ()

    def set_locs(self, locs) -> None:
        low, high = sorted(self.axis.get_view_interval()) if self.axis else (-np.inf, np.inf)
        self.ticks = tuple(float(v) for v in locs if low <= v <= high)

    def __call__(self, x, pos=None) -> str:
        ticks = np.asarray(self.ticks or (x,), dtype=float)
        top = float(np.max(np.abs(ticks)))
        scale, unit = next((s, u) for s, u in SI if top >= s and _decimals(ticks / s) <= 3 or not u)
        return f"{x / scale:,.{_decimals(ticks / scale)}f}{unit}"


def _decimals(values: np.ndarray) -> int:
    """The fewest decimals (at most 6) that write each of `values` exactly."""
    tolerance = 1e-9 * max(float(np.max(np.abs(values))), 1.0)
    return next((d for d in range(7) if np.all(np.abs(np.round(values, d) - values) <= tolerance)), 6)


LABEL_SIZE = 7
_STEPS = [4 + 9 * i for i in range(8)]
_OFFSETS = [(dx, sign * dy) for dy in _STEPS for sign in (1, -1) for dx in (5, -5)]  # points from the point


def place_labels(axis, xs: np.ndarray, ys: np.ndarray, texts: list[str], line: np.ndarray, renderer) -> None:
    """Each label at the first offset (nearest first) that stays inside the axes and clear of the points,
    the `line` (the front), the labels placed and their leader lines; failing that, where it overlaps least.
    A label moved away from its point gets a leader line to its near corner, which passes beside the labels
    stacked closer in."""
    inside = axis.get_window_extent(renderer)
    scale = renderer.points_to_pixels(1.0)
    centres = axis.transData.transform(np.column_stack([xs, ys])) if len(xs) else np.empty((0, 2))
    marks = np.concatenate([centres, _along(axis.transData.transform(line) if len(line) else line, 3.0)])
    radius = np.where(np.arange(len(marks)) < len(centres), 3.5 * scale, 1.0)[:, None]
    obstacles = np.hstack([marks - radius, marks + radius])  # points and the front: x0, y0, x1, y1
    placed = np.empty((0, 4))  # labels and leader lines
    style = {"textcoords": "offset points", "fontsize": LABEL_SIZE, "alpha": 0.85}
    for index in np.lexsort((xs, -ys)):
        probe = axis.annotate(texts[index], (xs[index], ys[index]), xytext=_OFFSETS[0], **style)
        best = None
        for dx, dy in _OFFSETS:
            probe.set_position((dx, dy))
            probe.set_horizontalalignment("left" if dx > 0 else "right")
            probe.set_verticalalignment("bottom" if dy > 0 else "top")
            box = probe.get_window_extent(renderer).extents
            (x, y), end = centres[index], centres[index][0] + dx * scale - np.sign(dx) * 2  # short of its own label
            (left, right), (bottom, top) = sorted((x, end)), sorted((y, y + dy * scale))
            leader = np.array([[left, bottom, right, top]]) if abs(dy) > _STEPS[0] else np.empty((0, 4))
            cost = 1e6 * _outside(box, inside.extents) + _overlaps(box, np.vstack([obstacles, placed]))
            cost += sum(_overlaps(extents, placed) for extents in leader)
            if best is None or cost < best[0]:
                best = (cost, dx, dy, np.vstack([box, leader]))
            if cost < 1.0:  # under a pixel: edges that touch
                break
        probe.remove()
        _, dx, dy, boxes = best
        corner = (0.0 if dx > 0 else 1.0, 0.0 if dy > 0 else 1.0)
        leader = {"arrowstyle": "-", "color": "#999", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 3, "relpos": corner}
        axis.annotate(texts[index], (xs[index], ys[index]), xytext=(dx, dy), ha="left" if dx > 0 else "right",
                      va="bottom" if dy > 0 else "top", arrowprops=leader if len(boxes) > 1 else None, **style)
        placed = np.vstack([placed, boxes])


def _along(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` pixels along a polyline (display coordinates)."""
    pieces = [points[:1]]
    for start, end in zip(points[:-1], points[1:]):
        count = max(int(np.hypot(*(end - start)) / spacing), 1)
        pieces.append(start + (end - start) * np.linspace(0, 1, count + 1)[1:, None])
    return np.concatenate(pieces) if len(points) else np.empty((0, 2))


def _overlaps(box: np.ndarray, others: np.ndarray) -> float:
    """The area `box` (x0, y0, x1, y1) shares with each of `others`, summed."""
    if not len(others):
        return 0.0
    width = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    height = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    return float(np.sum(np.clip(width, 0, None) * np.clip(height, 0, None)))


def _outside(box: np.ndarray, inside: np.ndarray) -> float:
    return (box[2] - box[0]) * (box[3] - box[1]) - _overlaps(box, inside[None, :])
