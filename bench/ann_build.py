"""The ANN index's build cost against its recall, per `expansion_add` and stored type, on a map's
own vectors.

    python bench/ann_build.py bench/out/pypi_all_static [--expansion-add 32 64 128] [--queries 500]
    python bench/ann_build.py bench/out/scale/pypi_all_5000000_synthetic_local --rows 2000000 \\
        --dtype f16 bf16 --expansion-add 64 --chunks 8

Builds the usearch index as the build does (inner product, connectivity 16, every core, the
vectors inserted in map order as float32 by `ann.add_vectors`) over the map's `embeddings.npy`
(or a random `--rows` of them, seed 0, kept in map order), once per type and `expansion_add`,
then searches it for random records of those (seed 0) at several search beams, one query at a
time. Recall@10 counts a found record as a hit when it scores at least the exact scan's 10th
best (ties are not misses, as in bench/ann.py). CPU seconds are this process's (usearch's
threads included): against the wall time they show how many cores the build had. `--chunks K`
inserts in K equal parts and prints each part's cost, to show how an insertion's cost grows with
the index. Prints markdown rows for docs/BENCHMARKS.md.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np

from atlas.mapdir import MapDir
from atlas.settings import SearchSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    parser.add_argument("--expansion-add", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--dtype", nargs="+", default=[SearchSettings.ann_dtype],
                        help="usearch types to store: bf16, f16, i8, f32")
    parser.add_argument("--beams", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--rows", type=int, help="a random subset of the map's vectors (map order kept)")
    parser.add_argument("--chunks", type=int, default=1)
    args = parser.parse_args()
    from usearch.index import Index

    from atlas.pipeline.ann import add_vectors

    vectors = MapDir(args.map).embeddings()
    if args.rows and args.rows < len(vectors):
        vectors = vectors[np.sort(np.random.default_rng(0).choice(len(vectors), args.rows, replace=False))]
    vectors = np.asarray(vectors)
    n = len(vectors)
    asked = np.random.default_rng(0).choice(n, args.queries, replace=False)
    queries = vectors[asked].astype(np.float32)
    exact = np.concatenate([queries @ vectors[i:i + 500_000].astype(np.float32).T
                            for i in range(0, n, 500_000)], axis=1)
    tenth = -np.partition(-exact, 9, axis=1)[:, 9]
    print(f"`python bench/ann_build.py {args.map}`: {n:,} vectors of {vectors.shape[1]} dimensions "
          f"({vectors.dtype}), {args.queries} queries, {os.cpu_count()} cores\n")
    rows, growth = [], []
    for dtype in args.dtype:
        for add in args.expansion_add:
            index = Index(ndim=vectors.shape[1], metric="ip", dtype=dtype,
                          connectivity=SearchSettings.connectivity, expansion_add=add)
            wall = cpu = 0.0
            for part in np.array_split(np.arange(n), args.chunks):
                start, cpu_start = time.perf_counter(), cpu_seconds()
                add_vectors(index, vectors[part[0]:part[-1] + 1], part, threads=0)
                seconds, used = time.perf_counter() - start, cpu_seconds() - cpu_start
                wall, cpu = wall + seconds, cpu + used
                growth.append((dtype, add, part[-1] + 1, len(part) / seconds, used / len(part) * 1e6))
            head = f"| {dtype} | {add} | {wall:.1f} s ({n / wall:,.0f}/s) | {cpu:.0f} s ({cpu / wall:.2f} cores)"
            for beam in args.beams:
                index.expansion_search = beam
                recall, p50, p95 = searched(index, queries, exact, tenth)
                rows.append(f"{head} | {beam} | {recall:.3f} | {p50:.2f} ms | {p95:.2f} ms |")
    print("| type | expansion_add | build | CPU | search beam | recall@10 | p50 per query | p95 |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.chunks > 1:
        print("\n| type | expansion_add | index size after the part | records/s in the part | CPU ms per 1k records |")
        print("|---|---|---|---|---|")
        for dtype, add, size, rate, per_k in growth:
            print(f"| {dtype} | {add} | {size:,} | {rate:,.0f} | {per_k:.0f} |")


def searched(index, queries: np.ndarray, exact: np.ndarray, tenth: np.ndarray) -> tuple[float, float, float]:
    """recall@10, and the p50 and p95 milliseconds of one query at a time."""
    times, keys = [], []
    for query in queries:
        start = time.perf_counter()
        keys.append(index.search(query, 10, threads=1).keys.astype(np.int64))
        times.append((time.perf_counter() - start) * 1000)
    found = np.take_along_axis(exact, np.stack(keys), axis=1)
    return (found >= tenth[:, None] - 1e-6).mean(), np.percentile(times, 50), np.percentile(times, 95)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


if __name__ == "__main__":
    main()
