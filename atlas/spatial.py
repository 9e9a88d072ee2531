"""Where points sit: the map's square world, Morton (Z-order) cells and the initial extent.

The world is the square that holds every point. Morton cells split it like map tiles:
the top 2z bits of a point's code name its tile at zoom z, so the points of one tile are
one contiguous run of a table sorted by code.
"""

from __future__ import annotations

import numpy as np

BITS = 16  # cells per axis: 2**16, so tiles line up with cells down to zoom 16


def world(xy: np.ndarray) -> tuple[float, float, float]:
    """(x0, y0, size): the smallest square that holds every point, with a little margin."""
    lo, hi = xy.min(axis=0).astype(float), xy.max(axis=0).astype(float)
    size = float(max(hi - lo)) * 1.02 or 1.0
    centre = (lo + hi) / 2
    return float(centre[0] - size / 2), float(centre[1] - size / 2), size


def morton_codes(xy: np.ndarray, square: tuple[float, float, float]) -> np.ndarray:
    """uint32 Z-order code of each point's cell in the world square (y counts upwards)."""
    x0, y0, size = square
    scale = (2**BITS) / size
    cx = np.clip((xy[:, 0] - x0) * scale, 0, 2**BITS - 1).astype(np.uint64)
    cy = np.clip((xy[:, 1] - y0) * scale, 0, 2**BITS - 1).astype(np.uint64)
    return (spread_bits(cx) | (spread_bits(cy) << np.uint64(1))).astype(np.uint32)


def spread_bits(v: np.ndarray) -> np.ndarray:
    """Insert a zero bit between each of the low 16 bits of v."""
    v = np.asarray(v, np.uint64)
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
    return (v | (v << np.uint64(1))) & np.uint64(0x55555555)


def extent(xy: np.ndarray, pad: float = 0.05) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) from the 0.5/99.5 percentiles: far-flung islands don't shrink the view."""
    lo = np.percentile(xy, 0.5, axis=0)
    hi = np.percentile(xy, 99.5, axis=0)
    margin = (hi - lo) * pad
    lo, hi = lo - margin, hi + margin
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])
