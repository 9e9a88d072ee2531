import numpy as np

from atlas.spatial import extent, morton_order


def test_morton_order_keeps_neighbours_together():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (20_000, 2)).astype(np.float32)
    ordered = xy[morton_order(xy)]
    block = ordered[:1000]  # the first block covers a small corner, not the whole map
    span = block.max(axis=0) - block.min(axis=0)
    assert (span < 40).all()


def test_extent_ignores_far_islands():
    xy = np.r_[np.random.default_rng(1).uniform(0, 10, (10_000, 2)), [[1000, 1000]]]
    x0, y0, x1, y1 = extent(xy)
    assert x1 < 20 and y1 < 20 and x0 < 0.5
