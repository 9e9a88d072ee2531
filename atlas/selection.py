"""Selections: a list of steps resolved to a bool mask in points.parquet order.

A step is `{"op": "replace" | "add" | "subtract", <one source>}` where the source is
`"where": FILTER` (atlas.filters), `"topic": ID` (any level), `"polygon": [[x, y], ...]`
(a lasso, map coordinates), `"box": [x0, y0, x1, y1]` or `"ids": [record ids]`. The page
maps a plain gesture to replace, shift to add, alt to subtract. A selection has at most
MAX_STEPS steps and a polygon at most MAX_VERTICES points: each is a pass over the points.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.filters import Frame, columns_used, parse
from atlas.schema import ID

OPS = ("replace", "add", "subtract")
SOURCES = ("where", "topic", "polygon", "box", "ids")
MAP_BOUND = ("topic", "polygon", "box")  # meaningful only on the map they were drawn on
MAX_STEPS = 100
MAX_VERTICES = 10_000


def resolve(steps: list[dict], frame: Frame) -> np.ndarray:
    """The records a selection spec selects."""
    if not isinstance(steps, list) or not steps:
        raise AtlasError('selection: give a non-empty list of steps such as [{"op": "replace", "topic": 3}]')
    if len(steps) > MAX_STEPS:
        raise AtlasError(f"selection: {len(steps)} steps; a selection has at most {MAX_STEPS}")
    selected = np.zeros(len(frame), bool)
    for step in steps:
        op, source = check_step(step)
        found = source_mask(source, step[source], frame)
        if op == "replace":
            selected = found
        elif op == "add":
            selected |= found
        else:
            selected &= ~found
    return selected


def check_step(step: dict) -> tuple[str, str]:
    """(op, source) of a step; AtlasError naming what is allowed."""
    if not isinstance(step, dict):
        raise AtlasError(f"selection: a step is an object with op and one of {', '.join(SOURCES)}, not {step!r}")
    op = step.get("op", "replace")
    if op not in OPS:
        raise AtlasError(f"selection: op is one of {', '.join(OPS)}, not {op!r}")
    sources = [key for key in SOURCES if key in step]
    if len(sources) != 1:
        raise AtlasError(f"selection: a step needs exactly one of {', '.join(SOURCES)}; got {sorted(step)}")
    return op, sources[0]


def source_mask(source: str, value, frame: Frame) -> np.ndarray:
    x = frame.points.column("x").to_numpy()
    y = frame.points.column("y").to_numpy()
    if source == "where":
        if not isinstance(value, str):
            raise AtlasError(f"selection: where is a filter text such as \"text_len < 20\", not {value!r}")
        return frame.mask(value)
    if source == "topic":
        return frame.compare("topic", "=", value)
    if source == "polygon":
        return in_polygon(x, y, _coordinates(value))
    if source == "box":
        x0, y0, x1, y1 = _box(value)
        return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise AtlasError("selection: ids is a list of record ids (strings)")
    return id_mask(frame.points.column(ID), value)


def id_mask(ids: pa.ChunkedArray | pa.Array, wanted) -> np.ndarray:
    """Bool mask of the positions of `ids` that are in `wanted` (unknown ids are ignored)."""
    found = pc.is_in(ids, value_set=pa.array(wanted, pa.string()))
    return found.to_numpy(zero_copy_only=False)


def in_polygon(x: np.ndarray, y: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd ray casting: a horizontal ray from each point crosses the edges an odd number
    of times when the point is inside. Only points in the polygon's bounding box are tested,
    one vectorised pass per edge."""
    inside = np.zeros(len(x), bool)
    (xmin, ymin), (xmax, ymax) = polygon.min(axis=0), polygon.max(axis=0)
    candidates = np.flatnonzero((x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax))
    px, py = x[candidates].astype(np.float64), y[candidates].astype(np.float64)
    odd = np.zeros(len(candidates), bool)
    for (ax, ay), (bx, by) in zip(polygon, np.roll(polygon, -1, axis=0)):
        if ay == by:
            continue
        straddles = (ay > py) != (by > py)
        crossing_x = ax + (py - ay) * (bx - ax) / (by - ay)
        odd ^= straddles & (px < crossing_x)
    inside[candidates[odd]] = True
    return inside


def _coordinates(value) -> np.ndarray:
    try:
        polygon = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        polygon = None
    if polygon is None or polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
        raise AtlasError("selection: polygon is a list of at least three [x, y] points in map coordinates")
    if len(polygon) > MAX_VERTICES:
        raise AtlasError(f"selection: the polygon has {len(polygon):,} points; at most {MAX_VERTICES:,}")
    if not np.isfinite(polygon).all():
        raise AtlasError("selection: polygon points must be finite numbers")
    return polygon


def _box(value) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise AtlasError("selection: box is [x0, y0, x1, y1] in map coordinates") from None
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def map_bound(steps: list[dict]) -> bool:
    """True when a spec depends on this map's layout or topic ids (a lasso, a box, a topic, a
    filter on topic), so replaying it on another map must use its record ids instead."""
    for step in steps:
        _, source = check_step(step)
        if source in MAP_BOUND or (source == "where" and "topic" in columns_used(parse(step["where"]))):
            return True
    return False
