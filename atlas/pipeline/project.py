"""Project embeddings to 2D with UMAP (cosine), reusing the kNN graph already computed.

Up to `ProjectSettings.fit_sample` records UMAP fits them all. Above it, UMAP fits a random
sample (`fit_layout`) and every other record is placed against that fixed layout block by
block (`place_block`), as UMAP's own `transform` does but from neighbours found in the kNN
graph (`sample_neighbors`) instead of a second index. A block depends only on the layout, its
own rows, the seed and its number, so the engine runs the blocks (`PlaceBlocks`: in this
process, or as Ray actors that each get the layout once) and any engine gives the same map.
With `backend="cuml"` RAPIDS cuML fits the layout on the GPU (from its own kNN of the fitted
vectors); the placement is the same.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from atlas.errors import AtlasError
from atlas.pipeline.engine import Batch, Engine, LocalEngine, Task, concat
from atlas.pipeline.neighbors import Neighbors
from atlas.settings import ProjectSettings

PLACE_BLOCK = 65_536  # records placed per block (one engine batch)


@dataclass(frozen=True)
class Layout:
    """UMAP fitted on a sample: the sample's coordinates and the curve's parameters."""

    xy: np.ndarray  # float32 (S, 2)
    a: float
    b: float


def project(
    vectors: np.ndarray, neighbors: Neighbors, *, settings: ProjectSettings, seed: int | None,
    engine: Engine | None = None, backend: str = "cpu",
) -> np.ndarray:
    """float32 (N, 2) map coordinates; `engine` places the records beyond the sample (default:
    this process); `backend`: "cpu" (umap-learn) or "cuml" (atlas.pipeline.gpu) fits the layout."""
    if _all_equal(vectors):  # UMAP's PCA init divides by their zero spread
        raise AtlasError(f"all {len(vectors):,} texts have the same embedding; a map needs texts that differ")
    n = len(vectors)
    if n <= settings.fit_sample:
        return fit_layout(vectors, neighbors, settings=settings, seed=seed, backend=backend).xy
    sample = sample_rows(n, settings.fit_sample, seed)
    knn = sample_neighbors(vectors, neighbors, sample)
    layout = fit_layout(vectors[sample], take(knn, sample), settings=settings, seed=seed, backend=backend)
    xy = np.empty((n, 2), np.float32)
    xy[sample] = layout.xy
    rest = np.setdiff1d(np.arange(n), sample)
    task = Task(PlaceBlocks, (layout, settings.place_epochs, seed))
    blocks = block_table(take(knn, rest))
    del knn  # the block table holds what placement needs of it
    xy[rest] = concat((engine or LocalEngine()).map_batches(task, blocks, PLACE_BLOCK), len(rest))["xy"]
    return xy


def _all_equal(vectors: np.ndarray, block: int = 65_536) -> bool:
    """Whether every row equals the first, compared by blocks (not an (N, dim) mask at once)."""
    return not any((vectors[start:start + block] != vectors[0]).any() for start in range(0, len(vectors), block))


def sample_rows(n: int, size: int, seed: int | None) -> np.ndarray:
    """Sorted row numbers of the records UMAP fits on (the same ones for the same n and seed)."""
    return np.sort(np.random.default_rng(seed or 0).choice(n, size, replace=False))


def block_table(knn: Neighbors) -> pa.Table:
    """The records to place, one row each: its block's number (PLACE_BLOCK rows a block) and
    its nearest sample members (`sample_neighbors` rows)."""
    n, k = knn.indices.shape
    return pa.table({"block": np.arange(n, dtype=np.int32) // PLACE_BLOCK,
                     "indices": pa.FixedSizeListArray.from_arrays(knn.indices.ravel(), k),
                     "distances": pa.FixedSizeListArray.from_arrays(knn.distances.ravel(), k)})


class PlaceBlocks:
    """An engine worker's placement against `layout` (sent once per worker) of the whole blocks
    of `block_table` rows in a batch."""

    def __init__(self, layout: Layout, epochs: int, seed: int | None):
        self.layout, self.epochs, self.seed = layout, epochs, seed

    def __call__(self, batch: pa.Table) -> Batch:
        block = batch.column("block").to_numpy()
        knn = Neighbors(*(_matrix(batch.column(name)) for name in ("indices", "distances")))
        starts = np.flatnonzero(np.diff(block)) + 1
        return {"xy": np.concatenate([
            place_block(self.layout, take(knn, rows), epochs=self.epochs, seed=self.seed, block=int(block[rows[0]]))
            for rows in np.split(np.arange(len(block)), starts)])}


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size list column as a (rows, size) array."""
    values = column.combine_chunks()
    return values.flatten().to_numpy().reshape(len(values), values.type.list_size)


def take(knn: Neighbors, rows: np.ndarray) -> Neighbors:
    return Neighbors(knn.indices[rows], knn.distances[rows])


def fit_layout(vectors: np.ndarray, neighbors: Neighbors, *, settings: ProjectSettings,
               seed: int | None, backend: str = "cpu") -> Layout:
    """UMAP on all of `vectors`, given their kNN among themselves (-1: none)."""
    if backend == "cuml":
        return _fit_cuml(vectors, neighbors.indices.shape[1], settings=settings, seed=seed)
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


def _fit_cuml(vectors: np.ndarray, k: int, *, settings: ProjectSettings, seed: int | None) -> Layout:
    """cuML's UMAP on the GPU, with the curve umap-learn would fit for `min_dist` (the placement uses it)."""
    from cuml.manifold import UMAP
    from umap.umap_ import find_ab_params

    a, b = find_ab_params(1.0, settings.min_dist)
    reducer = UMAP(n_components=2, n_neighbors=k, metric="cosine", min_dist=settings.min_dist,
                   n_epochs=settings.n_epochs, a=a, b=b, random_state=seed, output_type="numpy")
    xy = reducer.fit_transform(np.asarray(vectors, np.float32))  # the runner holds float16
    return Layout(np.asarray(xy, dtype=np.float32), float(a), float(b))


def sample_neighbors(vectors: np.ndarray, neighbors: Neighbors, sample: np.ndarray) -> Neighbors:
    """Each record's k nearest sample members (indices into `sample`, nearest first; a member
    finds itself), among its neighbours and their neighbours in the kNN graph. Rows that find no
    member but themselves there (0.2% of 886k PyPI rows for a 23% sample; UMAP would leave such
    a member out) are searched exactly; others that find fewer than k are padded with -1
    (distance 1)."""
    n, k = neighbors.indices.shape
    slot = np.full(n, -1, np.int32)
    slot[sample] = np.arange(len(sample), dtype=np.int32)
    members = np.ascontiguousarray(vectors[sample], np.float32)  # float32 copies: the sample's, a block's
    graph = np.ascontiguousarray(neighbors.indices, np.int32)
    indices = np.full((n, k), -1, np.int32)
    distances = np.ones((n, k), np.float32)
    from atlas.pipeline.two_hop import nearest_members

    for start in range(0, n, PLACE_BLOCK):
        stop = min(start + PLACE_BLOCK, n)
        nearest_members(np.asarray(vectors[start:stop], np.float32), start, graph, slot, members,
                        indices[start:stop], distances[start:stop])
    lost = np.flatnonzero(np.where(slot >= 0, indices[:, min(1, k - 1)], indices[:, 0]) < 0)
    if len(lost):
        from atlas.pipeline.neighbors import exact_top

        top, sims = exact_top(vectors[lost], members, k)
        indices[lost], distances[lost] = top, np.clip(1 - sims, 0, 2)
    return Neighbors(indices, distances)


def place_block(layout: Layout, knn: Neighbors, *, epochs: int, seed: int | None, block: int) -> np.ndarray:
    """float32 (B, 2): records placed against the fixed `layout`, given their nearest sample
    members (`sample_neighbors` rows). Each starts at its neighbours' weighted centre, then
    `epochs` of UMAP's SGD move it alone, on every core. The result depends only on the inputs,
    the seed and `block`: the same on any number of threads, with or without a seed."""
    from umap.umap_ import compute_membership_strengths, make_epochs_per_sample, smooth_knn_dist

    from atlas.pipeline.sgd import move_alone, random_states

    indices, distances = knn.indices, np.ascontiguousarray(knn.distances, np.float32)
    sigmas, rhos = smooth_knn_dist(distances, float(indices.shape[1]), local_connectivity=0.0)
    weights = compute_membership_strengths(indices, distances, sigmas, rhos, bipartite=True)[2].reshape(indices.shape)
    xy = _weighted_centres(layout.xy, indices, weights.astype(np.float32))
    weights[weights < weights.max() / epochs] = 0.0  # edges too weak to be sampled, as UMAP drops them
    seed_state = np.random.default_rng([seed or 0, block]).integers(-2**31, 2**31 - 1, 3)
    # layout.xy copied: umap's rdist takes only writable arrays, and a Ray worker's are read-only
    move_alone(xy, layout.xy.copy(), np.where(weights > 0, indices, -1).astype(np.int32),
               make_epochs_per_sample(weights.ravel(), epochs).reshape(weights.shape), layout.a, layout.b,
               random_states(seed_state, xy), epochs)
    return xy


def _weighted_centres(xy: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """float32 (B, 2): per row, the mean of its neighbours' coordinates weighted by membership."""
    total = weights.sum(axis=1, keepdims=True)
    share = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    centres = (share[:, :, None] * xy[np.maximum(indices, 0)]).sum(axis=1)
    nearest = xy[np.maximum(indices[:, 0], 0)]  # rows whose memberships are all zero
    return np.where(total > 0, centres, nearest).astype(np.float32)
