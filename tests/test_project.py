"""UMAP fitted on a sample, the other records placed against it block by block (project.py)."""

from dataclasses import replace

import numpy as np
import pytest
from conftest import SMALL_SETTINGS

from atlas.pipeline import project as proj
from atlas.pipeline.neighbors import exact_neighbors, exact_top
from atlas.pipeline.run import build
from atlas.settings import ProjectSettings


@pytest.fixture(scope="module")
def vectors(small_map):
    return small_map.embeddings().astype(np.float32)


@pytest.fixture(scope="module")
def sample_knn(vectors):
    sample = proj.sample_rows(len(vectors), 150, 0)
    return sample, proj.sample_neighbors(vectors, exact_neighbors(vectors, 15), sample)


def test_sample_neighbors_are_the_nearest_members_two_hops_away(vectors, sample_knn):
    sample, knn = sample_knn
    assert (knn.indices[sample, 0] == np.arange(150)).all() and (knn.distances[sample, 0] < 1e-3).all()
    assert knn.indices.max() == 149 and (np.diff(knn.distances, axis=1) >= 0).all()
    truth, _ = exact_top(vectors, vectors[sample], 15)
    found = knn.indices >= 0
    hits = [len(set(a[a >= 0]) & set(t)) for a, t in zip(knn.indices, truth)]
    few = found.sum(axis=1) < 15
    assert found.sum() == 5804  # of 6000: 42 rows find fewer than 15 members two hops away (7 or more)
    assert few.sum() == 42 and found[few].sum(axis=1).min() == 7
    assert sum(hits) == 4742  # 82% of those found are among the true 15 nearest members


def test_sample_neighbors_by_blocks_of_float16_rows_find_the_same(small_map, vectors, sample_knn, monkeypatch):
    """The search takes float32 copies of a block of rows at a time (and of the sample's)."""
    sample, knn = sample_knn
    monkeypatch.setattr(proj, "PLACE_BLOCK", 64)  # 400 rows: 7 blocks
    half = np.asarray(small_map.embeddings())
    blocked = proj.sample_neighbors(half, exact_neighbors(vectors, 15), sample)
    assert half.dtype == np.float16
    assert np.array_equal(blocked.indices, knn.indices) and np.array_equal(blocked.distances, knn.distances)


def test_a_record_alone_two_hops_away_is_searched_exactly(vectors):
    sample = proj.sample_rows(len(vectors), 150, 0)
    graph = exact_neighbors(vectors, 15)
    member, other = sample[0], np.setdiff1d(np.arange(len(vectors)), sample)[0]
    graph.indices[[member, other]] = np.array([[member], [other]])  # each its own only neighbour
    knn = proj.sample_neighbors(vectors, graph, sample)
    truth, _ = exact_top(vectors[[member, other]], vectors[sample], 15)
    assert (knn.indices[[member, other]] == truth).all() and knn.indices[member, 0] == 0


def test_place_block_depends_on_its_inputs_and_block_number_only(vectors, sample_knn):
    sample, knn = sample_knn
    layout = proj.fit_layout(vectors[sample], proj.take(knn, sample), settings=ProjectSettings(), seed=0)
    rest = np.setdiff1d(np.arange(len(vectors)), sample)

    def place(block):
        return proj.place_block(layout, proj.take(knn, rest), epochs=30, seed=7, block=block)

    first = place(0)
    assert first.shape == (250, 2) and first.dtype == np.float32
    assert np.array_equal(first, place(0)) and not np.array_equal(first, place(1))
    # each record lands among its nearest sample members: its 5 nearest layout points are often ones
    from scipy.spatial import cKDTree

    _, near = cKDTree(layout.xy).query(first, k=5)
    kept = np.mean([len(set(a) & set(m)) / 5 for a, m in zip(near, knn.indices[rest])])
    assert kept == pytest.approx(0.3552)  # a random layout point would be one 10% of the time


def test_placement_sgd_is_umaps_serial_sgd(vectors, sample_knn):
    """move_alone, one record per thread, gives what umap-learn's seeded (one-thread) SGD gives."""
    import scipy.sparse
    from umap.layouts import optimize_layout_euclidean
    from umap.umap_ import make_epochs_per_sample

    from atlas.pipeline.sgd import LEARNING_RATE, NEGATIVE_RATE, move_alone, random_states

    sample, knn = sample_knn
    layout = proj.fit_layout(vectors[sample], proj.take(knn, sample), settings=ProjectSettings(), seed=0)
    rows = np.setdiff1d(np.arange(len(vectors)), sample)
    rng = np.random.default_rng(3)
    tails = np.where(rng.random((len(rows), 15)) < 0.8, knn.indices[rows], -1).astype(np.int32)
    weights = np.where(tails >= 0, rng.random(tails.shape), 0).astype(np.float32)
    epochs_per_sample = make_epochs_per_sample(weights.ravel(), 30).reshape(weights.shape)
    start, state = rng.normal(size=(len(rows), 2)).astype(np.float32), rng.integers(-2**31, 2**31 - 1, 3)
    graph = scipy.sparse.coo_matrix(weights)
    theirs = optimize_layout_euclidean(
        start.copy(), layout.xy.copy(), graph.row, tails[graph.row, graph.col], 30, len(layout.xy),
        make_epochs_per_sample(graph.data, 30), layout.a, layout.b, state, 1.0, LEARNING_RATE, NEGATIVE_RATE,
        parallel=False, tqdm_kwds={"disable": True})
    ours = start.copy()
    move_alone(ours, layout.xy, tails, epochs_per_sample, layout.a, layout.b, random_states(state, start), 30)
    assert np.array_equal(ours, theirs) and not np.array_equal(ours, start)


def test_seeded_placement_is_the_same_on_any_threads_and_batches(vectors, monkeypatch):
    """Blocks of 64 placed on every core, on 1 thread, and with all blocks in one batch: the same map."""
    import numba

    from atlas.pipeline.engine import LocalEngine

    class OneBatch(LocalEngine):
        def map_batches(self, task, table, batch_size):
            return super().map_batches(task, table, table.num_rows)

    monkeypatch.setattr(proj, "PLACE_BLOCK", 64)  # 250 placed records: 4 blocks
    graph, settings = exact_neighbors(vectors, 15), ProjectSettings(fit_sample=150)

    def xy(seed, threads=numba.config.NUMBA_NUM_THREADS, engine=None):
        numba.set_num_threads(threads)
        try:
            return proj.project(vectors, graph, settings=settings, seed=seed, engine=engine)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    first = xy(42)
    assert np.array_equal(first, xy(42)) and np.array_equal(first, xy(42, threads=1))
    assert np.array_equal(first, xy(42, engine=OneBatch())) and not np.array_equal(first, xy(43))


def test_float16_vectors_project_as_their_float32_copy(small_map):
    """The runner holds the embeddings as saved (float16): the sample fit and the placement
    give the map that the float32 copy gives."""
    half = np.asarray(small_map.embeddings())
    graph, settings = exact_neighbors(half, 15), ProjectSettings(fit_sample=150)
    xy = [proj.project(v, graph, settings=settings, seed=42) for v in (half, half.astype(np.float32))]
    assert half.dtype == np.float16 and np.array_equal(xy[0], xy[1])


def test_sample_fit_writes_the_same_map_contract(tmp_path, small_parquet, small_map):
    settings = replace(SMALL_SETTINGS, project=ProjectSettings(fit_sample=200))
    maps = [build(small_parquet, tmp_path / name, settings, quiet=True, log=lambda _: None) for name in "ab"]
    points = maps[0].points()
    assert points.schema == small_map.points().schema
    assert sorted(points.column("row").to_pylist()) == list(range(400))
    assert np.isfinite(points.column("x").to_numpy()).all()
    assert maps[0].manifest()["settings"]["project"]["fit_sample"] == 200
    assert maps[0].topics().schema == small_map.topics().schema
    assert points.equals(maps[1].points())  # same seed, same map
