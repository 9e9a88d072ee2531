"""How well each coarser level of a map groups the level below, in meaning and on the map.
Give maps of the same data built two ways (e.g. with main's clustering and a branch's) to
compare them side by side:

    python bench/hierarchy.py MAP [MAP ...]
    python bench/hierarchy.py MAP --regroup   # + this code's coarser levels over MAP's fine topics

Per map and level above the finest, with the topics one level down as children, it prints:
- topic-cons: share of children whose mean vector is nearest their own parent's (cosine, among
  all topics of the parent's level); loo: the same with each parent's mean left without the
  child being placed (mean vectors weighted by records);
- record-cons: share of records whose vector is nearest their own topic's mean at that level;
- pieces: connected pieces the topics of the level make of the finest topics' neighbour graph,
  summed: the Gabriel graph of the finest topics' 2D centres (what `cluster` merges along),
  and 5 nearest centres; equal to the number of topics when each is one region of the map;
- largest: the biggest parent's share of records; smallest: its record count; effective:
  exp(entropy) of the parents' record shares (as many equal parents would give the same).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from atlas.mapdir import MapDir
from atlas.pipeline.cluster import map_centres, merged_levels, mostly_empty, neighbour_pairs
from atlas.schema import EMPTY, X, Y, topic_column
from atlas.vectors import BLOCK, topic_centres

HEADER = ("| map | level | topics | children | topic-cons | loo | record-cons | pieces (Gabriel / 5-NN) "
          "| largest | smallest | effective |\n|---|---|---|---|---|---|---|---|---|---|---|")


def level_figures(xy: np.ndarray, vectors: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                  finest: np.ndarray) -> dict:
    """Figures for one level (`upper`, per record) over the level below it (`lower`)."""
    _, child = np.unique(lower, return_inverse=True)
    _, parent_of_record = np.unique(upper, return_inverse=True)
    n_child, n_parent = child.max() + 1, parent_of_record.max() + 1
    parent = np.zeros(n_child, np.int64)
    parent[child] = parent_of_record
    sizes = np.bincount(child, minlength=n_child).astype(np.float64)
    means = topic_centres(vectors, child, n_child)
    parents = topic_centres(vectors, parent_of_record, n_parent)
    nearest = np.argmax(means @ parents.T, axis=1)
    sums = np.zeros((n_parent, means.shape[1]))
    np.add.at(sums, parent, means * sizes[:, None])
    others = sums[parent] - means * sizes[:, None]
    own = np.einsum("ij,ij->i", others, means) / np.maximum(np.linalg.norm(others, axis=1), 1e-12)
    rival = means @ (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).T
    rival[np.arange(n_child), parent] = -np.inf
    hits = 0
    for start in range(0, len(upper), BLOCK):
        block = np.asarray(vectors[start:start + BLOCK], np.float32)
        hits += int(np.sum(np.argmax(block @ parents.T, axis=1) == parent_of_record[start:start + BLOCK]))
    share = np.bincount(parent_of_record) / len(upper)
    return {"topics": n_parent, "children": n_child, "topic_cons": float(np.mean(nearest == parent)),
            "loo": float(np.mean(own > rival.max(axis=1))), "record_cons": hits / len(upper),
            "pieces": _pieces(xy, parent_of_record, finest), "largest": float(share.max()),
            "smallest": int(np.bincount(parent_of_record).min()),
            "effective": float(np.exp(-np.sum(share * np.log(share))))}


def _pieces(xy: np.ndarray, topic: np.ndarray, finest: np.ndarray) -> list[int]:
    """Connected pieces of each topic's finest topics, summed: in their Gabriel graph, and in 5-NN."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    _, fine = np.unique(finest, return_inverse=True)
    n = fine.max() + 1
    centres = map_centres(xy, fine, n)
    owner = np.zeros(n, np.int64)
    owner[fine] = topic
    _, near = cKDTree(centres).query(centres, k=min(6, n))
    knn = np.stack([np.repeat(np.arange(n), near.shape[1] - 1), near[:, 1:].ravel()], axis=1)
    pieces = []
    for pairs in (neighbour_pairs(centres), knn):
        graph = csr_matrix((np.ones(len(pairs)), pairs.T), shape=(n, n))
        pieces.append(sum(connected_components(graph[m][:, m], directed=False)[0]
                          for m in (np.flatnonzero(owner == t) for t in np.unique(owner))))
    return pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("maps", type=Path, nargs="+")
    parser.add_argument("--regroup", action="store_true", help="also group each map's fine topics into its "
                        "levels' counts with this code's `merge_topics` (a map built by older code, regrouped)")
    args = parser.parse_args()
    print(HEADER)
    for path in args.maps:
        mapdir = MapDir(path)
        points = mapdir.points()
        xy = np.stack([points.column(c).to_numpy() for c in (X, Y)], axis=1).astype(np.float64)
        levels = mapdir.manifest()["levels"]
        labels = [points.column(topic_column(lvl)).to_numpy() for lvl in range(levels)]
        versions = {path.name: labels}
        if args.regroup:
            versions[f"{path.name}, regrouped"] = _regrouped(xy, mapdir.embeddings(), labels,
                                                             points.column(EMPTY).to_numpy())
        for name, levels_of in versions.items():
            for lvl in range(levels - 1):
                f = level_figures(xy, mapdir.embeddings(), levels_of[lvl], levels_of[lvl + 1], levels_of[-1])
                print(f"| {name} | {lvl} | {f['topics']} | {f['children']} | {f['topic_cons']:.2f} | {f['loo']:.2f} "
                      f"| {f['record_cons']:.2f} | {f['pieces'][0]} / {f['pieces'][1]} | {f['largest']:.0%} "
                      f"| {f['smallest']:,} | {f['effective']:.1f} |", flush=True)


def _regrouped(xy: np.ndarray, vectors: np.ndarray, labels: list[np.ndarray], empty: np.ndarray) -> list[np.ndarray]:
    """The map's fine topics merged by `merge_topics` into as many topics per level as the map
    has, a fine topic mostly of empty texts kept apart as a build keeps it (one of those counts)."""
    _, fine = np.unique(labels[-1], return_inverse=True)
    n = fine.max() + 1
    apart = int(mostly_empty(fine, n, empty).sum())
    counts = [len(np.unique(level)) - apart for level in labels[:-1]]
    return merged_levels(xy, vectors, fine, n, counts, empty) + [labels[-1]]


if __name__ == "__main__":
    main()
