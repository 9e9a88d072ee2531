import numpy as np

from atlas.spatial import extent, morton_codes, spread_bits, world


def runs(keys: np.ndarray) -> int:
    """How many runs of equal rows `keys` (N, k) has."""
    return 1 + int(np.any(np.diff(keys, axis=0) != 0, axis=1).sum())


def assert_tiles_are_runs(mapdir, zooms: range) -> None:
    """A map's points.parquet: each tile's points are one contiguous run of rows at every zoom in
    `zooms` (what the tile server relies on; true on any layout). Points within 1e-4 of a tile's
    width from its edge are left out: float32 rounding may put them on either side."""
    points = mapdir.points(["x", "y"])
    xy = np.stack([points["x"].to_numpy(), points["y"].to_numpy()], axis=1).astype(np.float64)
    x0, y0, size = mapdir.manifest()["world"]
    for z in zooms:
        scaled = (xy - (x0, y0)) / size * 2**z
        clear = (np.abs(scaled - np.round(scaled)) > 1e-4).all(axis=1)
        tiles = np.floor(scaled[clear]).astype(np.int64)
        assert clear.mean() > 0.99 and runs(tiles) == len(np.unique(tiles, axis=0)), f"zoom {z}"


def test_each_tile_is_one_run_of_rows_at_every_zoom():
    # three points inside each cell of an 8 x 8 grid, never on a cell edge, in shuffled order
    rng = np.random.default_rng(0)
    cells = np.array([(i, j) for i in range(8) for j in range(8)] * 3, np.float32)
    xy = rng.permutation(cells + rng.uniform(0.1, 0.9, cells.shape).astype(np.float32))
    ordered = xy[np.argsort(morton_codes(xy, (0.0, 0.0, 8.0)), kind="stable")]
    for z in range(4):  # a tile at zoom z is 8 / 2**z wide
        tiles = np.floor(ordered / (8 / 2**z)).astype(int)
        assert runs(tiles) == len(np.unique(tiles, axis=0)) == 4**z
    # Z order: x before y (y counts upwards), at every scale
    assert np.floor(ordered[::48] / 4).astype(int).tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]
    assert np.floor(ordered[:12:3]).astype(int).tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]


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
