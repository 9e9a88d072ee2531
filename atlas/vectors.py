"""Per-topic mean vectors over the embeddings, the one kernel that labels, quotas and semantic
search share. Embeddings may be memory-mapped float16: they are read a block at a time."""

from __future__ import annotations

import numpy as np

BLOCK = 65_536


def topic_centres(vectors: np.ndarray, topic: np.ndarray, n_topics: int,
                  weights: np.ndarray | None = None, block: int = BLOCK) -> np.ndarray:
    """float32 (n_topics, dim): each topic's mean vector (records weighted by `weights`, e.g. a
    kept mask), scaled to unit length; zero for a topic with no (weighted) records.
    `topic` (N,) holds topic ids below n_topics, row-aligned with `vectors`; or (levels, N), one
    row per level of the hierarchy (a topic belongs to one level), for every level's topics in
    one pass over the vectors."""
    return unit_rows(topic_sums(vectors, topic, n_topics, weights, block))


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """float32: each row scaled to unit length (a zero row stays zero)."""
    return (matrix / np.maximum(np.linalg.norm(matrix, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def topic_sums(vectors: np.ndarray, topic: np.ndarray, n_topics: int,
               weights: np.ndarray | None = None, block: int = BLOCK) -> np.ndarray:
    """float64 (n_topics, dim): the sum of each topic's (weighted) record vectors; `topic` (N,) or
    (levels, N) and `weights` (N,) as for `topic_centres`."""
    from scipy.sparse import csr_matrix

    topic = np.atleast_2d(topic)
    sums = np.zeros((n_topics, vectors.shape[1]), np.float64)
    for start in range(0, topic.shape[1], block):
        rows = topic[:, start:start + block]
        weight = (np.ones(rows.shape) if weights is None
                  else np.broadcast_to(weights[start:start + block].astype(np.float64), rows.shape))
        columns = np.broadcast_to(np.arange(rows.shape[1]), rows.shape)
        members = csr_matrix((weight.ravel(), (rows.ravel(), columns.ravel())), shape=(n_topics, rows.shape[1]))
        sums += members @ np.asarray(vectors[start:start + block], np.float32)
    return sums


def centre_similarity(vectors: np.ndarray, topic: np.ndarray, centres: np.ndarray,
                      block: int = BLOCK) -> np.ndarray:
    """float32 (N,): cosine of each record's vector to its topic's centre (unit vectors); with
    `topic` (levels, N), (levels, N) in one pass over the vectors."""
    similarity = np.empty(np.shape(topic), np.float32)
    for start in range(0, np.shape(topic)[-1], block):
        part = np.asarray(vectors[start:start + block], np.float32)
        for level, ids in zip(np.atleast_2d(similarity), np.atleast_2d(topic)):
            level[start:start + block] = np.einsum("ij,ij->i", part, centres[ids[start:start + block]])
    return similarity
