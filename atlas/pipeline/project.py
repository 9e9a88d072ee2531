"""Project embeddings to 2D with UMAP (cosine), reusing the kNN graph already computed.

Up to `ProjectSettings.fit_sample` records UMAP fits them all. Above it, UMAP fits a random
sample (`fit_layout`) and every other record is placed against that fixed layout block by
block (`place_block`), as UMAP's own `transform` does but from neighbours found in the kNN
graph (`sample_neighbors`) instead of a second index. A block depends only on the layout, its
own rows and the seed, so blocks can run anywhere, in any order, and give the same map.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from atlas.errors import AtlasError
from atlas.pipeline.neighbors import Neighbors
from atlas.settings import ProjectSettings

PLACE_BLOCK = 65_536  # records placed per block


@dataclass(frozen=True)
class Layout:
    """UMAP fitted on a sample: the sample's coordinates and the curve's parameters."""

    xy: np.ndarray  # float32 (S, 2)
    a: float
    b: float


def project(
    vectors: np.ndarray, neighbors: Neighbors, *, settings: ProjectSettings, seed: int | None
) -> np.ndarray:
    """float32 (N, 2) map coordinates."""
    if not (vectors != vectors[0]).any():  # UMAP's PCA init divides by their zero spread
        raise AtlasError(f"all {len(vectors):,} texts have the same embedding (the same text?); "
                         "a map needs texts that differ")
    n = len(vectors)
    if n <= settings.fit_sample:
        return fit_layout(vectors, neighbors, settings=settings, seed=seed).xy
    sample = sample_rows(n, settings.fit_sample, seed)
    knn = sample_neighbors(vectors, neighbors, sample)
    layout = fit_layout(vectors[sample], take(knn, sample), settings=settings, seed=seed)
    xy = np.empty((n, 2), np.float32)
    xy[sample] = layout.xy
    rest = np.setdiff1d(np.arange(n), sample)
    for start, rows in blocks(rest):
        xy[rows] = place_block(layout, take(knn, rows), epochs=settings.place_epochs, seed=seed, block=start)
    return xy


def sample_rows(n: int, size: int, seed: int | None) -> np.ndarray:
    """Sorted row numbers of the records UMAP fits on (the same ones for the same n and seed)."""
    return np.sort(np.random.default_rng(seed or 0).choice(n, size, replace=False))


def blocks(rows: np.ndarray, size: int = PLACE_BLOCK) -> Iterator[tuple[int, np.ndarray]]:
    """(block number, rows) of consecutive `size`-row blocks."""
    for number, start in enumerate(range(0, len(rows), size)):
        yield number, rows[start:start + size]


def take(knn: Neighbors, rows: np.ndarray) -> Neighbors:
    return Neighbors(knn.indices[rows], knn.distances[rows])


def fit_layout(vectors: np.ndarray, neighbors: Neighbors, *, settings: ProjectSettings,
               seed: int | None) -> Layout:
    """UMAP on all of `vectors`, given their kNN among themselves (-1: none)."""
    import umap

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=neighbors.indices.shape[1],
        metric="cosine",
        min_dist=settings.min_dist,
        init="pca",  # spectral init fails or takes minutes past ~100k records
        n_epochs=settings.n_epochs,
        random_state=seed,
        precomputed_knn=(neighbors.indices, neighbors.distances, None),
        low_memory=True,
        verbose=False,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")
        xy = reducer.fit_transform(vectors)
    return Layout(np.asarray(xy, dtype=np.float32), float(reducer._a), float(reducer._b))


def sample_neighbors(vectors: np.ndarray, neighbors: Neighbors, sample: np.ndarray) -> Neighbors:
    """Each record's k nearest sample members (indices into `sample`, nearest first; a member
    finds itself), among its neighbours and their neighbours in the kNN graph. Rows that find no
    member but themselves there (0.2% of 886k PyPI rows for a 23% sample; UMAP would leave such
    a member out) are searched exactly; others that find fewer than k are padded with -1
    (distance 1)."""
    n, k = neighbors.indices.shape
    slot = np.full(n, -1, np.int32)
    slot[sample] = np.arange(len(sample), dtype=np.int32)
    vectors = np.ascontiguousarray(vectors, np.float32)
    indices = np.full((n, k), -1, np.int32)
    distances = np.ones((n, k), np.float32)
    from atlas.pipeline.two_hop import nearest_members

    nearest_members(vectors, np.ascontiguousarray(neighbors.indices, np.int32), slot, indices, distances)
    lost = np.flatnonzero(np.where(slot >= 0, indices[:, min(1, k - 1)], indices[:, 0]) < 0)
    if len(lost):
        from atlas.pipeline.neighbors import exact_top

        top, sims = exact_top(vectors[lost], vectors[sample], k)
        indices[lost], distances[lost] = top, np.clip(1 - sims, 0, 2)
    return Neighbors(indices, distances)


def place_block(layout: Layout, knn: Neighbors, *, epochs: int, seed: int | None, block: int) -> np.ndarray:
    """float32 (B, 2): records placed against the fixed `layout`, given their nearest sample
    members (`sample_neighbors` rows). Each starts at its neighbours' weighted centre, then
    `epochs` of UMAP's SGD move it alone. With a seed the result depends only on the inputs and
    `block` (one thread); without one it runs on every core."""
    import scipy.sparse
    from umap.layouts import optimize_layout_euclidean
    from umap.umap_ import compute_membership_strengths, make_epochs_per_sample, smooth_knn_dist

    indices, distances = knn.indices, np.ascontiguousarray(knn.distances, np.float32)
    sigmas, rhos = smooth_knn_dist(distances, float(indices.shape[1]), local_connectivity=0.0)
    rows, cols, vals, _ = compute_membership_strengths(indices, distances, sigmas, rhos, bipartite=True)
    start = _weighted_centres(layout.xy, indices, vals.reshape(indices.shape).astype(np.float32))
    graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(indices), len(layout.xy)))
    graph.data[graph.data < graph.data.max() / epochs] = 0.0
    graph.eliminate_zeros()
    rng = np.random.default_rng([seed or 0, block])
    return optimize_layout_euclidean(
        start, layout.xy.copy(), graph.row, graph.col, epochs, len(layout.xy),
        make_epochs_per_sample(graph.data, epochs), layout.a, layout.b,
        rng.integers(-2**31, 2**31 - 1, 3).astype(np.int64), 1.0, 0.25, 5.0,
        parallel=seed is None, tqdm_kwds={"disable": True},
    )


def _weighted_centres(xy: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """float32 (B, 2): per row, the mean of its neighbours' coordinates weighted by membership."""
    total = weights.sum(axis=1, keepdims=True)
    share = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    centres = (share[:, :, None] * xy[np.maximum(indices, 0)]).sum(axis=1)
    nearest = xy[np.maximum(indices[:, 0], 0)]  # rows whose memberships are all zero
    return np.where(total > 0, centres, nearest).astype(np.float32)
