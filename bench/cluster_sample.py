"""HDBSCAN on a sample of a built map's points against HDBSCAN on all of them (cluster.py's
`fine_topics`, ClusterSettings.cluster_sample): seconds, peak RSS, fine topics, outlier share and
agreement with the full run's fine topics.

    python bench/cluster_sample.py bench/out/scale/pypi_all_local --samples 250000 500000
    python bench/cluster_sample.py bench/out/scale/pypi_all_5000000_synthetic_local --samples 500000 1000000 2000000

The full run is the map's own finest level (points.parquet, built by `atlas build` with every
point clustered); `--full` also reruns it here, side by side. Each variant runs in a forked
process whose peak RSS is reported (it includes the ~30 bytes per point this process holds).
Samples under 100,000 points go to hdbscan (joblib workers), which stalled in the forked child
on a loaded box (not resolved): use samples of 100,000 or more.
Agreement: the adjusted Rand index, and the share of records whose sampled topic's majority
full-run topic is their own (sampled -> full), and the other way round (full -> sampled).
"""

import argparse
import multiprocessing
import resource
import time
from pathlib import Path

import numpy as np

from atlas.mapdir import MapDir
from atlas.pipeline.cluster import min_cluster_size
from atlas.schema import OUTLIER, X, Y, topic_column
from atlas.settings import ClusterSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    parser.add_argument("--samples", type=int, nargs="+", default=[500_000, 1_000_000])
    parser.add_argument("--full", action="store_true", help="also rerun HDBSCAN on every point")
    args = parser.parse_args()
    mapdir = MapDir(args.map)
    finest = topic_column(mapdir.manifest()["levels"] - 1)
    points = mapdir.points([X, Y, finest, OUTLIER])
    xy = np.stack([points.column(c).to_numpy() for c in (X, Y)], axis=1)
    reference = points.column(finest).to_numpy()
    ref_outlier = points.column(OUTLIER).to_numpy(zero_copy_only=False)
    n = len(xy)
    min_size = min_cluster_size(n, ClusterSettings())
    print(f"`python bench/cluster_sample.py {args.map}`: {n:,} points, min_cluster_size {min_size}; "
          f"the map's own run: {len(np.unique(reference))} fine topics, {ref_outlier.mean():.1%} outliers\n")
    print("| HDBSCAN on | seconds | peak RSS | fine topics | outliers | ARI with full | majority sampled->full "
          "| majority full->sampled |\n|---|---|---|---|---|---|---|---|")
    variants = ([None] if args.full else []) + [s for s in args.samples if s < n]
    for sample in variants:
        seconds, rss, labels, outlier = run_forked(xy, min_size, sample)
        ari, forward, backward = agreement(labels, reference)
        name = "every point" if sample is None else f"sample {sample:,}"
        print(f"| {name} | {seconds:.1f} | {rss / 2**30:.2f} GiB | {len(np.unique(labels))} | {outlier.mean():.1%} "
              f"| {ari:.3f} | {forward:.3f} | {backward:.3f} |", flush=True)


def run_forked(xy: np.ndarray, min_size: int, sample: int | None):
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(xy, min_size, sample, send))
    child.start()
    result = receive.recv()
    child.join()
    return result


def _child(xy, min_size, sample, send) -> None:
    from atlas.pipeline.cluster import fine_topics

    start = time.perf_counter()
    labels, outlier = fine_topics(xy, min_size, sample=sample)
    seconds = time.perf_counter() - start
    send.send((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, labels, outlier))


def agreement(labels: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    from sklearn.metrics import adjusted_rand_score

    pairs, counts = np.unique(labels.astype(np.int64) * (int(reference.max()) + 1) + reference, return_counts=True)
    mine, theirs = np.divmod(pairs, int(reference.max()) + 1)

    def majority_share(key: np.ndarray) -> float:
        order = np.lexsort((-counts, key))
        first = np.unique(key[order], return_index=True)[1]
        return counts[order][first].sum() / counts.sum()

    return adjusted_rand_score(reference, labels), majority_share(mine), majority_share(theirs)


if __name__ == "__main__":
    main()
