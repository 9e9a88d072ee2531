"""The kNN graph of a map's vectors two ways, side by side in one run: one usearch index in this
process (built and searched on every core), and a sharded one on a local Ray (an index per
block of records, each built in a task that then queries every record against it; the
shards' top k merged here). Recall@k against an exact scan of sampled records.

    python bench/knn_shards.py bench/out/scale/pypi_100k_local --shards 2 4

Prints a markdown table: seconds to build, to query, in all, and recall@k.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from atlas.mapdir import MapDir
from atlas.pipeline.ann import build_index
from atlas.settings import SearchSettings

SAMPLED = 2000  # records whose exact neighbours judge recall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    parser.add_argument("--shards", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--k", type=int, default=15, help="as the build's neighbours")
    parser.add_argument("--cpus", type=int, default=2, help="the local Ray's")
    args = parser.parse_args()
    vectors = np.ascontiguousarray(MapDir(args.map).embeddings(), np.float32)
    sample = np.random.default_rng(0).choice(len(vectors), min(SAMPLED, len(vectors)), replace=False)
    truth = exact(vectors, sample, args.k)
    rows = [("one index, this process", *one_index(vectors, args.k))]
    import ray

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    for shards in args.shards:
        rows.append((f"{shards} shards on Ray ({args.cpus} CPUs)", *sharded(vectors, args.k, shards)))
    ray.shutdown()
    print(f"\n{len(vectors):,} vectors of {vectors.shape[1]} dimensions, k = {args.k}\n")
    print(f"| kNN graph | build | query | total | recall@{args.k} |\n|---|---|---|---|---|")
    for name, build_s, query_s, found in rows:
        recall = np.mean([len(set(found[i]) & set(truth[j])) / args.k for j, i in enumerate(sample)])
        built = "in its tasks" if build_s is None else f"{build_s:.1f} s"
        print(f"| {name} | {built} | {query_s:.1f} s | {(build_s or 0) + query_s:.1f} s | {recall:.3f} |")


def exact(vectors: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    sims = vectors[rows] @ vectors.T
    return np.argsort(-sims, axis=1)[:, :k]


def one_index(vectors: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    start = time.perf_counter()
    index = build_index(vectors, np.arange(len(vectors)), settings=SearchSettings(), seed=None)
    built = time.perf_counter()
    found = index.search(vectors, k, threads=0).keys
    return built - start, time.perf_counter() - built, found.astype(np.int64)


def sharded(vectors: np.ndarray, k: int, shards: int) -> tuple[None, float, np.ndarray]:
    """Each task builds its shard and queries it: no build time of its own."""
    import ray

    @ray.remote(num_cpus=1)
    def shard_knn(vectors: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        keys = np.arange(start, stop)
        index = build_index(vectors[start:stop], keys, settings=SearchSettings(), seed=0)  # one thread
        found = index.search(vectors, k, threads=1)
        return found.keys.astype(np.int64), found.distances

    started = time.perf_counter()
    shared = ray.put(vectors)
    bounds = np.linspace(0, len(vectors), shards + 1).astype(int)
    parts = ray.get([shard_knn.remote(shared, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])])
    keys = np.concatenate([p[0] for p in parts], axis=1)
    distances = np.concatenate([p[1] for p in parts], axis=1)
    best = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return None, time.perf_counter() - started, np.take_along_axis(keys, best, axis=1)


if __name__ == "__main__":
    main()
