"""The large-input stage algorithms side by side, on one set of real vectors in one run:
the kNN graph from NN-descent against one read from an ANN index (recall@15 against an exact
scan), UMAP fitted on every record against a sample fit plus block placement (project.py),
and hdbscan against fast_hdbscan on the resulting map (cluster.py). Prints a markdown table
of seconds and quality (the docs/BENCHMARKS.md table "Large inputs, stage by stage").

    python bench/stages.py bench/out/pypi_100k.parquet --text summary --sample 25000
    python bench/stages.py bench/out/pypi_all.parquet --text summary --vectors /tmp/all.npy --skip-full --seed 42

Quality of a map: trustworthiness (scikit-learn, cosine, 15 neighbours) of 5,000 random
records, and the share of their 15 graph neighbours among their 15 nearest points on the map
(kNN kept). `--vectors PATH` keeps the static embeddings to reuse on the next run; `--seed N`
adds the sample fit and placement with that seed (the fit on one thread, as `atlas build --seed`).
"""

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path)
    parser.add_argument("--text", required=True)
    parser.add_argument("--sample", type=int, help="UMAP's fit sample (default: ProjectSettings.fit_sample)")
    parser.add_argument("--vectors", type=Path, help="an .npy file to keep the static embeddings in")
    parser.add_argument("--skip-full", action="store_true", help="leave out UMAP on every record")
    parser.add_argument("--seed", type=int, help="also the sample fit and placement with this seed")
    args = parser.parse_args()
    from atlas.pipeline.neighbors import EXACT_LIMIT, nearest_neighbors
    from atlas.settings import ProjectSettings

    vectors = load_vectors(args)
    n = len(vectors)
    start = time.perf_counter()
    graph = nearest_neighbors(vectors, k=15, seed=None)
    how = "exact scan" if n <= EXACT_LIMIT else "NN-descent"
    rows = [("neighbors", f"{how} (k 15)", time.perf_counter() - start, "", recall(vectors, graph.indices))]
    rows += ann_graph_rows(vectors)
    judge = Judge(vectors, graph.indices)
    settings = ProjectSettings()
    sample = ProjectSettings(fit_sample=args.sample or settings.fit_sample)
    maps = {}
    variants = [("every record", replace(settings, fit_sample=n), None),
                (f"fit {sample.fit_sample:,}, place the rest", sample, None)]
    if args.seed is not None:
        variants.append((f"fit {sample.fit_sample:,}, place the rest, seed {args.seed}", sample, args.seed))
    for name, chosen, seed in variants:
        if args.skip_full and chosen.fit_sample == n:
            continue
        seconds, maps[name] = timed(project_with, vectors, graph, chosen, seed)
        rows.append(("project", f"UMAP, {name}", seconds, *judge(maps[name])))
    xy = maps[variants[1][0]]  # the sample fit without a seed
    rows += cluster_rows(xy)
    print(f"| {n:,} records | how | seconds | trustworthiness / topics | kNN kept / ARI / recall |")
    print("|---|---|---|---|---|")
    for stage, how, seconds, first, second in rows:
        print(f"| {stage} | {how} | {seconds:.1f} | {first} | {second} |")


def load_vectors(args: argparse.Namespace) -> np.ndarray:
    if args.vectors and args.vectors.is_file():
        return np.load(args.vectors).astype(np.float32)
    from atlas.pipeline.embed import load_embedder
    from atlas.pipeline.ingest import read_dataset
    from atlas.settings import EmbedSettings, cache_dir

    data = read_dataset(args.source, text_columns=(args.text,), id_column=None, input_format=None,
                        skip_bad_lines=False)
    embedder = load_embedder("static", EmbedSettings(embedder="static"), cache_dir())
    texts = data.text.to_pylist()
    vectors = np.concatenate([np.asarray(embedder.encode(texts[i:i + 65536]), np.float32)
                              for i in range(0, len(texts), 65536)])
    if args.vectors:
        np.save(args.vectors, vectors.astype(np.float16))
    return vectors


def project_with(vectors, graph, settings, seed):
    from atlas.pipeline.project import project

    return project(vectors, graph, settings=settings, seed=seed)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


class Judge:
    """Trustworthiness and kNN kept of a map, on the same 5,000 random records each time."""

    def __init__(self, vectors: np.ndarray, graph: np.ndarray):
        self.vectors, self.graph = vectors, graph
        self.rows = np.random.default_rng(1).choice(len(vectors), min(5000, len(vectors)), replace=False)

    def __call__(self, xy: np.ndarray) -> tuple[str, str]:
        from scipy.spatial import cKDTree
        from sklearn.manifold import trustworthiness

        _, near = cKDTree(xy).query(xy[self.rows], k=15)
        kept = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(self.graph[self.rows], near)])
        trust = trustworthiness(self.vectors[self.rows], xy[self.rows], n_neighbors=15, metric="cosine")
        return f"{trust:.4f}", f"{kept:.3f}"


def recall(vectors: np.ndarray, indices: np.ndarray, queries: int = 1000) -> str:
    """recall@15 of kNN rows against an exact scan, on the same random records each time; a
    found record counts when it scores at least the true 15th best (identical texts tie)."""
    rows = np.random.default_rng(0).choice(len(vectors), queries, replace=False)
    sims = vectors[rows] @ vectors.T
    kth = -np.partition(-sims, 14, axis=1)[:, 14]
    found = np.take_along_axis(sims, indices[rows].astype(np.int64), axis=1)
    return f"recall {(found >= kth[:, None] - 1e-6).mean():.3f}"


def ann_graph_rows(vectors: np.ndarray) -> list[tuple]:
    """The kNN graph read from the build's ANN index (SearchSettings): its build, then a search
    of every record at two expansions."""
    from usearch.index import Index

    from atlas.settings import SearchSettings

    search = SearchSettings()
    start = time.perf_counter()
    index = Index(ndim=vectors.shape[1], metric="ip", dtype=search.ann_dtype, connectivity=search.connectivity,
                  expansion_add=search.expansion_add)
    index.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=0)
    rows = [("neighbors", f"usearch index build (expansion_add {search.expansion_add})",
             time.perf_counter() - start, "", "")]
    for ef in (32, 64):
        index.expansion_search = ef
        seconds, found = timed(index.search, vectors, 15)
        rows.append(("neighbors", f"search every record in it, ef {ef}", seconds, "",
                     recall(vectors, found.keys.astype(np.int64))))
    return rows


def cluster_rows(xy: np.ndarray) -> list[tuple]:
    """hdbscan and fast_hdbscan with the build's parameters; the second compiled before timing."""
    import fast_hdbscan
    import hdbscan
    from sklearn.metrics import adjusted_rand_score

    from atlas.pipeline.cluster import hdbscan_params, min_cluster_size
    from atlas.settings import ClusterSettings

    size = min_cluster_size(len(xy), ClusterSettings())
    params = hdbscan_params(size)
    fast_hdbscan.HDBSCAN(**params).fit_predict(xy[:2000])
    slow_s, slow = timed(hdbscan.HDBSCAN(**params, core_dist_n_jobs=-1).fit_predict, xy)
    fast_s, fast = timed(fast_hdbscan.HDBSCAN(**params).fit_predict, xy)
    return [("cluster", f"hdbscan (min size {size})", slow_s, f"{slow.max() + 1} topics", ""),
            ("cluster", "fast_hdbscan", fast_s, f"{fast.max() + 1} topics", f"{adjusted_rand_score(slow, fast):.3f}")]


if __name__ == "__main__":
    main()
