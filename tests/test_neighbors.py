import numpy as np

from atlas.pipeline import neighbors
from atlas.pipeline.embed import _unit_rows


def test_exact_neighbors_match_brute_force():
    rng = np.random.default_rng(0)
    v = _unit_rows(rng.normal(size=(500, 16)).astype(np.float32))
    nb = neighbors.exact_neighbors(v, 5, block=64)
    brute = np.argsort(-(v @ v.T), axis=1)[:, :5]
    assert (nb.indices[:, 0] == np.arange(500)).all()
    assert (nb.indices == brute).mean() > 0.99
    assert np.allclose(nb.distances[:, 0], 0, atol=1e-5)


def test_nn_descent_agrees_with_exact(monkeypatch):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32))
    v = _unit_rows((np.repeat(centres, 100, axis=0) + rng.normal(0, 0.3, (5000, 32))).astype(np.float32))
    monkeypatch.setattr(neighbors, "EXACT_LIMIT", 100)
    approx = neighbors.nearest_neighbors(v, k=10, seed=0)
    exact = neighbors.exact_neighbors(v, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.indices, exact.indices)])
    assert recall > 0.9


def test_nn_descent_on_float16_vectors_finds_what_their_float32_copy_finds(monkeypatch):
    """The runner holds the embeddings as saved (float16); NN-descent makes the float32 copy it needs."""
    rng = np.random.default_rng(1)
    v = _unit_rows(rng.normal(size=(2000, 16)).astype(np.float32)).astype(np.float16)
    monkeypatch.setattr(neighbors, "EXACT_LIMIT", 100)
    half, full = (neighbors.nearest_neighbors(x, k=10, seed=0) for x in (v, v.astype(np.float32)))
    assert np.array_equal(half.indices, full.indices) and np.array_equal(half.distances, full.distances)
