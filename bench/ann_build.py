"""The ANN index's build cost against its recall, per `expansion_add`, on a map's own vectors.

    python bench/ann_build.py bench/out/pypi_all_static [--expansion-add 32 64 128] [--queries 500]

Builds the usearch index as the build does (float16, inner product, connectivity 16, every
core) over the map's `embeddings.npy`, once per `expansion_add`, then searches it for random
records of the map (seed 0) at several search beams, one query at a time. Recall@10 counts a
found record as a hit when it scores at least the exact scan's 10th best (ties are not
misses, as in bench/ann.py). Prints markdown rows for docs/BENCHMARKS.md.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from atlas.mapdir import MapDir
from atlas.settings import SearchSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    parser.add_argument("--expansion-add", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--beams", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    from usearch.index import Index

    vectors = np.asarray(MapDir(args.map).embeddings(), np.float32)
    n = len(vectors)
    asked = np.random.default_rng(0).choice(n, args.queries, replace=False)
    exact = vectors[asked] @ vectors.T
    tenth = -np.sort(-exact, axis=1)[:, 9]
    print(f"`python bench/ann_build.py {args.map}`: {n:,} vectors of {vectors.shape[1]} dimensions, "
          f"{args.queries} queries\n")
    print("| expansion_add | build | search beam | recall@10 | p50 per query |\n|---|---|---|---|---|")
    for add in args.expansion_add:
        start = time.perf_counter()
        index = Index(ndim=vectors.shape[1], metric="ip", dtype="f16",
                      connectivity=SearchSettings.connectivity, expansion_add=add)
        index.add(np.arange(n, dtype=np.uint64), vectors, threads=0)
        build = time.perf_counter() - start
        for beam in args.beams:
            index.expansion_search = beam
            times, keys = [], []
            for query in vectors[asked]:
                start = time.perf_counter()
                keys.append(index.search(query, 10, threads=1).keys.astype(np.int64))
                times.append((time.perf_counter() - start) * 1000)
            found = np.take_along_axis(exact, np.stack(keys), axis=1)
            recall = (found >= tenth[:, None] - 1e-6).mean()
            print(f"| {add} | {build:.1f} s | {beam} | {recall:.3f} | {np.median(times):.2f} ms |")


if __name__ == "__main__":
    main()
