"""Exact blocked kNN against NN-descent, each in a fresh process (so NN-descent pays its JIT as a build does).

    python bench/neighbors.py --sizes 20000,50000,100000

Vectors: random non-empty PyPI summaries embedded by the static embedder (256 dims), made
once into bench/out/. Prints seconds per method and size, and NN-descent's recall of the exact
15 neighbours.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path("bench/out")
K = 15


def vectors(n: int) -> np.ndarray:
    path = OUT / "neighbors_vectors.npy"
    if not path.exists() or len(np.load(path, mmap_mode="r")) < n:
        import pyarrow.compute as pc
        from pypi import TSV, read_pypi

        from atlas.pipeline.embed import load_embedder
        from atlas.settings import EmbedSettings, cache_dir

        summaries = [s for s in pc.drop_null(read_pypi(TSV).column("summary")).to_pylist() if s.strip()]
        pick = np.random.default_rng(0).choice(len(summaries), n, replace=False)
        embedded = load_embedder("static", EmbedSettings(), cache_dir()).encode([summaries[i] for i in pick])
        OUT.mkdir(parents=True, exist_ok=True)
        np.save(path, embedded)
    return np.load(path)[:n]


def one(method: str, n: int) -> None:
    """Run one method in this (fresh) process and print its seconds and indices file."""
    from atlas.pipeline import neighbors

    v = vectors(n)
    start = time.perf_counter()
    if method == "exact":
        result = neighbors.exact_neighbors(v, K)
    else:
        neighbors.EXACT_LIMIT = 0
        result = neighbors.nearest_neighbors(v, k=K, seed=None)
    seconds = time.perf_counter() - start
    np.save(OUT / f"knn_{method}_{n}.npy", result.indices)
    print(json.dumps({"seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20000,50000,100000")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args.one[0], int(args.one[1]))
    sizes = [int(s) for s in args.sizes.split(",")]
    vectors(max(sizes))
    print("| records | exact blocked | NN-descent (fresh process) | NN-descent recall@15 |")
    print("|---|---|---|---|")
    for n in sizes:
        seconds = {}
        for method in ("exact", "nndescent"):
            run = subprocess.run([sys.executable, __file__, "--one", method, str(n)], capture_output=True,
                                 text=True, check=True)
            seconds[method] = json.loads(run.stdout.strip().splitlines()[-1])["seconds"]
        exact, approx = (np.load(OUT / f"knn_{m}_{n}.npy") for m in ("exact", "nndescent"))
        recall = np.mean([len(set(a) & set(e)) / K for a, e in zip(approx, exact)])
        print(f"| {n:,} | {seconds['exact']:.1f} s | {seconds['nndescent']:.1f} s | {recall:.3f} |", flush=True)


if __name__ == "__main__":
    main()
