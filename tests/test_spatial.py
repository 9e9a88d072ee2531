import numpy as np

from atlas.spatial import extent, morton_codes, spread_bits, world


def test_codes_sort_points_by_tile():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (20_000, 2)).astype(np.float32)
    square = world(xy)
    codes = morton_codes(xy, square)
    ordered = xy[np.argsort(codes, kind="stable")]
    # at zoom 1 the world splits into 4 tiles; each is one contiguous quarter of the rows
    tile_of = (ordered[:, 0] > square[0] + square[2] / 2).astype(int) + 2 * (
        ordered[:, 1] > square[1] + square[2] / 2)
    assert (np.diff(tile_of) >= 0).all()
    assert np.sort(codes >> 30).tolist() == (np.sort(codes) >> 30).tolist()


def test_spread_bits():
    assert spread_bits(np.array([0b1011])).tolist() == [0b1000101]


def test_world_holds_every_point():
    xy = np.array([[0, 0], [10, 2], [-5, 1]], np.float32)
    x0, y0, size = world(xy)
    assert x0 <= -5 and y0 <= 0 and x0 + size >= 10 and y0 + size >= 2


def test_extent_ignores_far_islands():
    xy = np.r_[np.random.default_rng(1).uniform(0, 10, (10_000, 2)), [[1000, 1000]]]
    x0, y0, x1, y1 = extent(xy)
    assert x1 < 20 and y1 < 20 and x0 < 0.5
