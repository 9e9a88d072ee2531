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
    assert found.sum() == 5751  # of 6000: 53 rows find fewer than 15 members two hops away (8 or more)
    assert few.sum() == 53 and found[few].sum(axis=1).min() == 8
    assert sum(hits) == 4504  # 78% of those found are among the true 15 nearest members


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
    assert kept == pytest.approx(0.3456)  # a random layout point would be one 10% of the time


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
