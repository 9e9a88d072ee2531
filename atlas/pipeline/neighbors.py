"""k nearest neighbours in embedding space, computed once for UMAP, dedup and the map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Neighbors:
    indices: np.ndarray  # int32 (N, k); row i lists i's neighbours, nearest first (i itself included)
    distances: np.ndarray  # float32 (N, k), cosine distance = 1 - cosine similarity


# Measured by bench/neighbors.py (shared 2-core box): exact 31 s against NN-descent's 266 s (its
# numba compilation included) at 20k, 183 s against 166 s at 50k, 625 s against 246 s at 100k.
EXACT_LIMIT = 50_000


def exact_neighbors(vectors: np.ndarray, k: int, block: int | None = None) -> Neighbors:
    """Brute-force kNN by blocks of rows (memory: block x N float32 similarities, 128 MiB by default)."""
    vectors = np.ascontiguousarray(vectors, np.float32)
    indices, sims = exact_top(vectors, vectors, k, block, self_first=True)
    return Neighbors(indices, np.clip(1 - sims, 0, 2))


def exact_top(queries: np.ndarray, base: np.ndarray, k: int, block: int | None = None, *,
              self_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """int32 (Q, k) rows of `base` with the largest inner products with each query, best first,
    and those products (float32). `self_first`: queries are `base` itself, and row i lists i first."""
    n = len(base)
    base = np.ascontiguousarray(base, np.float32)
    block = block or max(64, min(4096, (1 << 25) // max(n, 1)))
    indices = np.empty((len(queries), k), np.int32)
    top_sims = np.empty((len(queries), k), np.float32)
    for start in range(0, len(queries), block):
        sims = np.asarray(queries[start:start + block], np.float32) @ base.T
        if self_first:
            sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = 2.0
        top = np.argpartition(sims, n - k, axis=1)[:, n - k:]
        found = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-found, axis=1, kind="stable")
        indices[start:start + block] = np.take_along_axis(top, order, axis=1)
        top_sims[start:start + block] = np.take_along_axis(found, order, axis=1)
    return indices, top_sims


def nearest_neighbors(vectors: np.ndarray, *, k: int, seed: int | None) -> Neighbors:
    """Cosine kNN of unit vectors: exact up to EXACT_LIMIT records, NN-descent above. Given
    float16 (as the runner holds them), NN-descent makes the one float32 copy it normalises;
    given float32 it would copy them again."""
    n = len(vectors)
    k = min(k, n - 1)
    if n <= EXACT_LIMIT:
        return exact_neighbors(vectors, k)
    from pynndescent import NNDescent

    index = NNDescent(
        vectors, metric="cosine", n_neighbors=k, random_state=seed, low_memory=True,
        n_jobs=1 if seed is not None else -1, compressed=True,
    )
    idx, dist = index.neighbor_graph
    return Neighbors(idx.astype(np.int32), dist.astype(np.float32))
