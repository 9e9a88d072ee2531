"""An approximate nearest-neighbour index over the map's vectors, for semantic search.

usearch's HNSW graph, its vectors stored in 2 bytes a dimension (float16 by default,
SearchSettings.ann_dtype): the file is half the size of a float32 index and a reader
memory-maps it instead of loading it (bench/ann.py compares it with hnswlib and faiss;
bench/ann_build.py compares bfloat16 with float16).
"""

from __future__ import annotations

import numpy as np

from atlas.settings import SearchSettings

BLOCK = 100_000  # vectors added at a time


def build_index(vectors: np.ndarray, keys: np.ndarray, *, settings: SearchSettings, seed: int | None):
    """A usearch Index of unit `vectors` (inner product) under integer `keys`. With a seed the
    graph is built on one thread, so the same input gives the same index; else on every core."""
    from usearch.index import Index

    index = Index(ndim=vectors.shape[1], metric="ip", dtype=settings.ann_dtype,
                  connectivity=settings.connectivity, expansion_add=settings.expansion_add,
                  expansion_search=settings.expansion_search)
    add_vectors(index, vectors, keys, threads=1 if seed is not None else 0)
    return index


def add_vectors(index, vectors: np.ndarray, keys: np.ndarray, *, threads: int) -> None:
    """Insert `vectors` under `keys` as float32, a BLOCK at a time: from float16 input usearch's
    graph found 0.65 of the true top 10 for text queries on the 886k map, from float32 0.92
    (bench/semantic_recall.py --rebuild). `threads` 0: every core."""
    for start in range(0, len(vectors), BLOCK):
        index.add(keys[start:start + BLOCK].astype(np.uint64), np.asarray(vectors[start:start + BLOCK], np.float32),
                  threads=threads)
