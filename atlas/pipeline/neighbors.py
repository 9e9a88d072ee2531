"""k nearest neighbours in embedding space, computed once for UMAP, dedup and the map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Neighbors:
    indices: np.ndarray  # int32 (N, k); row i lists i's neighbours, nearest first (i itself included)
    distances: np.ndarray  # float32 (N, k), cosine distance = 1 - cosine similarity


EXACT_LIMIT = 20_000  # brute force takes about 3 s at this size on 2 cores, NN-descent ~30 s of JIT


def exact_neighbors(vectors: np.ndarray, k: int, block: int = 2048) -> Neighbors:
    """Brute-force kNN by blocks of rows (memory: block x N similarities)."""
    n = len(vectors)
    indices = np.empty((n, k), np.int32)
    distances = np.empty((n, k), np.float32)
    for start in range(0, n, block):
        sims = vectors[start:start + block] @ vectors.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = 2.0  # self first
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        indices[start:start + block] = np.take_along_axis(top, order, axis=1)
        distances[start:start + block] = np.clip(1 - np.take_along_axis(top_sims, order, axis=1), 0, 2)
    return Neighbors(indices, distances)


def nearest_neighbors(vectors: np.ndarray, *, k: int, seed: int | None) -> Neighbors:
    """Cosine kNN of unit vectors: exact up to EXACT_LIMIT records, NN-descent above."""
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
