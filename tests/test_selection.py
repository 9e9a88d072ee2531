"""Selections: lasso (even-odd ray casting) against a brute-force reference, boxes, steps."""

import numpy as np
import pytest
from test_filters import tiny_frame

from atlas.errors import AtlasError
from atlas.selection import in_polygon, map_bound, resolve


@pytest.fixture
def frame():
    return tiny_frame()


def reference(x, y, polygon):
    """Point-by-point even-odd rule, the textbook loop."""
    out = []
    for px, py in zip(x, y):
        inside = False
        for (ax, ay), (bx, by) in zip(polygon, np.roll(polygon, -1, axis=0)):
            if (ay > py) != (by > py) and px < ax + (py - ay) * (bx - ax) / (by - ay):
                inside = not inside
        out.append(inside)
    return np.array(out)


def test_lasso_matches_reference_on_a_concave_polygon():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 11, 5000).astype(np.float32), rng.uniform(-1, 11, 5000).astype(np.float32)
    polygon = np.array([[0, 0], [10, 0], [10, 10], [6, 10], [6, 3], [4, 3], [4, 10], [0, 10]], float)  # a U
    inside = in_polygon(x, y, polygon)
    assert (inside == reference(x, y, polygon)).all()
    assert not in_polygon(np.array([5.0]), np.array([5.0]), polygon)[0]  # in the U's notch
    assert in_polygon(np.array([2.0]), np.array([5.0]), polygon)[0]


def test_steps_replace_add_subtract(frame):
    # x is 0..5 in points order
    box = [{"op": "replace", "box": [0.5, -1, 3.5, 1]}]
    assert resolve(box, frame).nonzero()[0].tolist() == [1, 2, 3]
    steps = [*box, {"op": "add", "where": "n = 6"}, {"op": "subtract", "ids": ["r3", "unknown"]}]
    assert resolve(steps, frame).nonzero()[0].tolist() == [0, 1, 3]
    lasso = [{"polygon": [[-0.5, -1], [1.5, -1], [1.5, 1], [-0.5, 1]]}, {"op": "add", "topic": 4}]
    assert resolve(lasso, frame).nonzero()[0].tolist() == [0, 1, 3, 4, 5]
    assert resolve([{"where": "n > 0"}, {"op": "replace", "ids": ["r0"]}], frame).nonzero()[0].tolist() == [5]


@pytest.mark.parametrize("steps, message", [
    ([], "non-empty list"),
    ([{"op": "union", "topic": 1}], "op is one of replace, add, subtract"),
    ([{"topic": 1, "box": [0, 0, 1, 1]}], "exactly one of"),
    ([{"polygon": [[0, 0], [1, 1]]}], "at least three"),
    ([{"box": [0, 0, 1]}], "box is [x0, y0, x1, y1]"),
])
def test_bad_steps(frame, steps, message):
    with pytest.raises(AtlasError) as error:
        resolve(steps, frame)
    assert message in str(error.value)


def test_map_bound():
    assert map_bound([{"box": [0, 0, 1, 1]}]) and map_bound([{"where": "n > 1 or topic = 3"}])
    assert not map_bound([{"where": "n > 1"}, {"op": "add", "ids": ["a"]}])
