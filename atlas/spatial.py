"""Spatial order and extent of map points."""

from __future__ import annotations

import numpy as np


def extent(xy: np.ndarray, pad: float = 0.05) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) from the 0.5/99.5 percentiles: far-flung islands don't shrink the map."""
    lo = np.percentile(xy, 0.5, axis=0)
    hi = np.percentile(xy, 99.5, axis=0)
    margin = (hi - lo) * pad
    lo, hi = lo - margin, hi + margin
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def morton_order(xy: np.ndarray, bits: int = 16) -> np.ndarray:
    """Permutation that sorts points along a Z-order curve, so nearby points share row groups."""
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    scale = (2**bits - 1) / np.maximum(hi - lo, 1e-12)
    cells = ((xy - lo) * scale).astype(np.uint64)
    return np.argsort(_spread(cells[:, 0]) | (_spread(cells[:, 1]) << np.uint64(1)), kind="stable")


def _spread(v: np.ndarray) -> np.ndarray:
    """Insert a zero bit between each of the low 16 bits of v."""
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
    return (v | (v << np.uint64(1))) & np.uint64(0x55555555)
