"""Nested topics: HDBSCAN finds fine topics on the map; merging neighbouring fine topics of
similar meaning gives the coarser levels.

The coarser levels are states of one sequence of merges, so they are nested by construction and
every topic has exactly one parent. Only topics that touch on the map merge, so a coarse topic is
one region of the map; which neighbours merge first is decided by their embeddings (Ward's cost
on the topics' mean vectors), so a coarse topic is a category, not just a stretch of the map.
HDBSCAN's noise points join the topic of their nearest clustered neighbour and are
flagged as outliers, so every record has a topic at every level. A fine topic of empty texts
merges with nothing: what it is (records with no text) is what a curator looks for at the
opening zoom, and its meaningless mean vector would blur the topic it joined. With `backend="cuml"`
RAPIDS cuML's HDBSCAN finds the fine topics on the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atlas.settings import ClusterSettings

# fast_hdbscan (the same leaf clusters: adjusted Rand index 0.97 with hdbscan's) took 9 s against
# hdbscan's 27 s on 100k PyPI map points, but 0.8 s against 0.4 s on 8k (bench/stages.py).
FAST_FROM = 100_000
# A merge that would make a group larger than SPREAD times a level's mean group size waits while
# any other merge is possible: no group takes most of the map.
SPREAD = 2.5
# Coarse topics per square root of the fine ones (within ClusterSettings.coarse_range). At 1.0 the
# sample's 111 fine topics made 11 coarse ones, four of them mixes of 1,489-1,799 records, such as
# "Linux-related software packages"; at 1.5 (16) most split into categories ("Networking
# tools and client libraries", "Perl and XML"): docs/BENCHMARKS.md "Coarse topics: how many".
COARSE_PER_ROOT = 1.5


@dataclass
class Hierarchy:
    labels: np.ndarray  # int32 (levels, N): topic id of each record per level; level 0 is coarsest
    parent: np.ndarray  # int32 (topics,): parent topic id, -1 at level 0
    level: np.ndarray  # int8 (topics,)
    outlier: np.ndarray  # bool (N,): HDBSCAN called it noise

    @property
    def n_levels(self) -> int:
        return len(self.labels)


def cluster(xy: np.ndarray, vectors: np.ndarray, *, settings: ClusterSettings, backend: str = "cpu",
            empty: np.ndarray | None = None) -> Hierarchy:
    """`vectors` (N, dim): the records' embeddings, row-aligned with `xy` (read a block at a time,
    so memory-mapped float16 is fine). `backend`: "cpu" (hdbscan, fast_hdbscan) or "cuml"
    (atlas.pipeline.gpu) for the fine topics. `empty` (N,) marks records with no text: a fine
    topic mostly of them stays a topic of its own at every level."""
    n = len(xy)
    fine, outlier = fine_topics(xy, min_cluster_size(n, settings), backend, sample=settings.cluster_sample)
    n_fine = int(fine.max()) + 1
    lo, hi = settings.coarse_range
    n_coarse = int(np.clip(round(COARSE_PER_ROOT * np.sqrt(n_fine)), min(lo, n_fine), hi))
    counts = [n_coarse]
    if n >= settings.three_levels_from and n_fine > n_coarse + 1:
        counts.append(round(np.sqrt(n_coarse * n_fine)))
    return _number_topics(merged_levels(xy, vectors, fine, n_fine, counts, empty) + [fine], outlier)


def min_cluster_size(n: int, settings: ClusterSettings) -> int:
    """HDBSCAN's smallest fine topic for `n` points: the setting, else max(10, sqrt(n)/4); at
    most a quarter of the points."""
    return min(settings.min_cluster_size or max(10, round(np.sqrt(n) / 4)), max(2, n // 4))


def merged_levels(xy: np.ndarray, vectors: np.ndarray, fine: np.ndarray, n_fine: int,
                  counts: list[int], empty: np.ndarray | None = None) -> list[np.ndarray]:
    """Per count, each record's group when the `fine` topics (0..n_fine-1, per record) are
    merged into that many (`merge_topics`, nested; a fine topic mostly of `empty` records merges
    with none)."""
    from atlas.vectors import topic_centres

    sizes = np.bincount(fine, minlength=n_fine)
    apart = None if empty is None else mostly_empty(fine, n_fine, empty)
    groups = merge_topics(map_centres(xy, fine, n_fine), topic_centres(vectors, fine, n_fine), sizes, counts,
                          apart)
    return [g[fine] for g in groups]


def mostly_empty(fine: np.ndarray, n_fine: int, empty: np.ndarray) -> np.ndarray:
    """bool (n_fine,): the fine topics more than half of whose records are `empty` texts."""
    return np.bincount(fine, empty.astype(float), n_fine) > np.bincount(fine, minlength=n_fine) / 2


def map_centres(xy: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """float64 (n, 2): each topic's mean position on the map (0, 0 for a topic with no records)."""
    sizes = np.bincount(labels, minlength=n)
    return np.stack([np.bincount(labels, xy[:, d], n) for d in (0, 1)], axis=1) / np.maximum(sizes, 1)[:, None]


def fine_topics(xy: np.ndarray, min_size: int, backend: str = "cpu",
                sample: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """HDBSCAN leaf clusters; noise takes the cluster of its nearest clustered point. Above
    `sample` points, HDBSCAN runs on a random sample that large (seed 0) with `min_size` scaled
    to it, and every other point takes the cluster and the noise flag of its nearest sample point."""
    from scipy.spatial import cKDTree

    n = len(xy)
    if sample is None or n <= sample:
        return _hdbscan(xy, min_size, backend)
    rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False))
    labels, outlier = _hdbscan(xy[rows], max(2, round(min_size * sample / n)), backend)
    _, nearest = cKDTree(xy[rows]).query(xy, k=1)
    nearest[rows] = np.arange(sample)  # a sample point keeps its own topic, even where points coincide
    return labels[nearest], outlier[nearest]


def hdbscan_params(min_size: int) -> dict:
    """HDBSCAN's parameters for leaf clusters of at least `min_size` points (any of the backends)."""
    return {"min_cluster_size": min_size, "min_samples": max(2, min_size // 3), "cluster_selection_method": "leaf"}


def _hdbscan(xy: np.ndarray, min_size: int, backend: str) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import cKDTree

    params = hdbscan_params(min_size)
    if backend == "cuml":
        from cuml.cluster.hdbscan import HDBSCAN

        labels = np.array(HDBSCAN(**params, output_type="numpy").fit_predict(xy), np.int64)
    elif len(xy) >= FAST_FROM:
        import fast_hdbscan

        labels = fast_hdbscan.HDBSCAN(**params).fit_predict(xy)
    else:
        import hdbscan

        labels = hdbscan.HDBSCAN(**params, core_dist_n_jobs=-1).fit_predict(xy)
    outlier = labels < 0
    if outlier.all():
        return np.zeros(len(xy), np.int32), outlier
    if outlier.any():
        _, nearest = cKDTree(xy[~outlier]).query(xy[outlier], k=1)
        labels[outlier] = labels[~outlier][nearest]
    return labels.astype(np.int32), outlier


def merge_topics(centres: np.ndarray, means: np.ndarray, sizes: np.ndarray, counts: list[int],
                 apart: np.ndarray | None = None) -> list[np.ndarray]:
    """Group the fine topics into `counts[k]` groups for each k (nested): agglomerate groups that
    are neighbours on the map (linked by an edge of the Gabriel graph of the topics' 2D `centres`),
    cheapest first. A merge costs Ward's increase in variance of the topics' `means` (unit mean
    vectors, weighted by record `sizes`), times 1 + the shortest link between the two groups in
    median links: similar meaning first, and across a gap on the map only when the meaning is
    close. Topics marked `apart` merge with none: each is a group of its own, beyond `counts`
    (the others' graph is drawn without them). Returns, per count, the group (0..count-1, and
    one more per apart topic) of each fine topic."""
    n = len(centres)
    size = sizes.astype(np.float64)
    sums = means.astype(np.float64) * size[:, None]
    joins = np.flatnonzero(~apart) if apart is not None else np.arange(n)
    a, b = joins[neighbour_pairs(centres[joins])].T.copy()
    length = np.linalg.norm(centres[a] - centres[b], axis=1)
    unit = np.median(length) if len(length) else 1.0
    group = np.arange(n)

    def ward(i: np.ndarray, j: np.ndarray, gap: np.ndarray) -> np.ndarray:
        diff = sums[i] / size[i, None] - sums[j] / size[j, None]
        return size[i] * size[j] / (size[i] + size[j]) * np.einsum("ij,ij->i", diff, diff) * (1 + gap / unit)

    cost, found, alive = ward(a, b, length), {}, len(joins)
    for count in sorted(set(counts), reverse=True):
        cap = SPREAD * size[joins].sum() / count
        while alive > count:
            allowed = size[a] + size[b] <= cap
            k = int(np.argmin(np.where(allowed, cost, np.inf) if allowed.any() else cost))
            keep, j = a[k], b[k]  # j joins keep
            group[group == j] = keep
            size[keep] += size[j]
            sums[keep] += sums[j]
            a[a == j], b[b == j] = keep, keep
            a, b, cost, length = _distinct_pairs(a, b, cost, length, keep)
            touched = (a == keep) | (b == keep)
            cost[touched] = ward(a[touched], b[touched], length[touched])
            alive -= 1
        found[count] = np.unique(group, return_inverse=True)[1].astype(np.int32)
    return [found[c] for c in counts]


def neighbour_pairs(centres: np.ndarray) -> np.ndarray:
    """int (edges, 2), i < j: the Gabriel graph of the points (their Delaunay edges whose
    diameter circle holds no other point), connected and with only short, local edges."""
    from scipy.spatial import Delaunay, QhullError, cKDTree

    n = len(centres)
    try:
        triangulation = Delaunay(centres)
    except (QhullError, ValueError):  # under 3 points, or all on one line: every pair
        return np.stack(np.triu_indices(n, 1), axis=1)
    t = triangulation.simplices
    repeated = triangulation.coplanar[:, [0, 2]]  # a point left out (a repeat) joins its nearest vertex
    pairs = np.unique(np.sort(np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [0, 2]], repeated]), axis=1), axis=0)
    ends = centres[pairs]
    nearest, _ = cKDTree(centres).query(ends.mean(axis=1), k=1)
    return pairs[nearest >= np.linalg.norm(ends[:, 0] - ends[:, 1], axis=1) / 2 * (1 - 1e-9)]


def _distinct_pairs(a: np.ndarray, b: np.ndarray, cost: np.ndarray, length: np.ndarray,
                    node: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """After `node` absorbed another: its pairs ordered i < j, without self pairs or repeats
    (of repeats, the shortest link stays)."""
    touched = np.flatnonzero((a == node) | (b == node))
    touched = touched[np.argsort(length[touched], kind="stable")]
    other = np.where(a[touched] == node, b[touched], a[touched])
    _, first = np.unique(other, return_index=True)
    kept = touched[first][other[first] != node]
    keep = np.ones(len(a), bool)
    keep[touched] = False
    keep[kept] = True
    a[kept], b[kept] = np.minimum(a[kept], b[kept]), np.maximum(a[kept], b[kept])
    return a[keep], b[keep], cost[keep], length[keep]


def _number_topics(partitions: list[np.ndarray], outlier: np.ndarray) -> Hierarchy:
    """Give topics ids unique across levels: level by level, biggest first."""
    labels, parent, level = [], [], []
    next_id = 0
    previous = None
    for depth, part in enumerate(partitions):
        sizes = np.bincount(part)
        present = np.flatnonzero(sizes)
        order = present[np.argsort(-sizes[present], kind="stable")]
        remap = np.full(len(sizes), -1, np.int32)
        remap[order] = np.arange(next_id, next_id + len(order), dtype=np.int32)
        ids = remap[part]
        if previous is None:
            parent.extend([-1] * len(order))
        else:
            first_member = np.unique(ids, return_index=True)[1]
            parent.extend(previous[first_member].tolist())
        level.extend([depth] * len(order))
        labels.append(ids)
        previous = ids
        next_id += len(order)
    return Hierarchy(
        np.stack(labels), np.array(parent, np.int32), np.array(level, np.int8), outlier
    )


def label_positions(xy: np.ndarray, labels: np.ndarray, n_topics: int) -> np.ndarray:
    """float32 (n_topics, 2): per topic, the member closest to the topic's centre."""
    positions = np.full((n_topics, 2), np.nan, np.float32)
    for level_labels in labels:
        dist = ((xy - map_centres(xy, level_labels, n_topics)[level_labels]) ** 2).sum(axis=1)
        order = np.lexsort((dist, level_labels))
        topic_ids, first = np.unique(level_labels[order], return_index=True)
        positions[topic_ids] = xy[order[first]]
    return positions
