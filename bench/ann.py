"""ANN libraries for semantic search: build seconds, index size, recall@10 against the exact
scan, and time per query, on PyPI summaries embedded with the static embedder.

    python bench/ann.py [--records 20000] [--queries 200] [--threads 2]

Queries are the first six words of random summaries (seed 1), embedded like the server does;
the truth is the exact scan of every vector. A found record counts as a hit when it scores at
least the 10th best (PyPI has many equal summaries: ties are not misses). Time per query is the index search alone, one
query at a time (as the server asks), not the embedding. Prints the table of docs/BENCHMARKS.md.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from pypi import TSV, read_pypi

from atlas.pipeline.embed import load_embedder
from atlas.settings import EmbedSettings, cache_dir

K = 10


# Each builder returns search(query, effort) -> ids, and save(path). Effort is the HNSW
# search beam (ef); IVF probes effort / 4 lists.


def hnswlib_index(vectors, threads):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), M=16, ef_construction=200, random_seed=0)
    index.set_num_threads(threads)
    index.add_items(vectors, np.arange(len(vectors)))
    index.set_num_threads(1)

    def search(q, ef):
        index.set_ef(ef)
        return index.knn_query(q, k=K)[0][0]
    return search, lambda path: index.save_index(str(path))


def faiss_hnsw(vectors, threads):
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 200
    index.add(vectors)
    faiss.omp_set_num_threads(1)

    def search(q, ef):
        index.hnsw.efSearch = ef
        return index.search(q[None], K)[1][0]
    return search, lambda path: faiss.write_index(index, str(path))


def faiss_ivf(vectors, threads):
    import faiss

    faiss.omp_set_num_threads(threads)
    nlist = int(4 * np.sqrt(len(vectors)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist,
                               faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    faiss.omp_set_num_threads(1)

    def search(q, ef):
        index.nprobe = ef // 4
        return index.search(q[None], K)[1][0]
    return search, lambda path: faiss.write_index(index, str(path))


def usearch_index(vectors, threads, dtype="f16"):
    from usearch.index import Index

    index = Index(ndim=vectors.shape[1], metric="ip", dtype=dtype, connectivity=16, expansion_add=128)
    index.add(np.arange(len(vectors)), vectors, threads=threads)

    def search(q, ef):
        index.expansion_search = ef
        return index.search(q, K, threads=1).keys
    return search, lambda path: index.save(str(path))


CANDIDATES = {
    "hnswlib 0.8.0 HNSW (M 16, ef_construction 200), float32": hnswlib_index,
    "faiss-cpu 1.15.1 HNSWFlat (M 32, ef_construction 200), float32": faiss_hnsw,
    "faiss-cpu 1.15.1 IVFFlat (4·√N lists, probing ef/4), float32": faiss_ivf,
    "usearch 2.26.6 HNSW (M 16, expansion_add 128), float16": usearch_index,
    "usearch 2.26.6 HNSW (M 16, expansion_add 128), int8": lambda v, t: usearch_index(v, t, dtype="i8"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="build threads (queries use one)")
    parser.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256], help="search beams to try")
    parser.add_argument("--tsv", type=Path, default=TSV, required=TSV is None)
    args = parser.parse_args()
    summaries = read_pypi(args.tsv, args.records).column("summary").drop_null()
    summaries = summaries.filter(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(summaries)), 0)).to_pylist()
    embedder = load_embedder("static", EmbedSettings(), cache_dir())
    # As the map stores them: float16 unit vectors, searched as float32.
    vectors = embedder.encode(summaries).astype(np.float16).astype(np.float32)
    rng = np.random.default_rng(1)
    queries = embedder.encode([" ".join(summaries[i].split()[:6]) for i in rng.choice(len(summaries), args.queries)])

    def exact(q):
        return np.argsort(-(vectors @ q), kind="stable")[:K]

    truth = [(vectors[exact(q)] @ q)[-1] for q in queries]  # the 10th best score
    rows = [_row("exact scan (numpy, float32)", "–", 0.0, vectors.nbytes, lambda q, _: exact(q), vectors, queries,
                 truth)]
    for name, make in CANDIDATES.items():
        start = time.perf_counter()
        search, save = make(vectors, args.threads)
        seconds = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as tmp:
            save(Path(tmp) / "index")
            size = (Path(tmp) / "index").stat().st_size
        rows += [_row(name, ef, seconds, size, search, vectors, queries, truth) for ef in args.ef]
    print(f"`python {' '.join(sys.argv)}`: {len(vectors):,} PyPI summaries, static embedder ({vectors.shape[1]} "
          f"dimensions), {len(queries)} queries, build on {args.threads} threads, queries on one; "
          "the 2-core box was shared with other jobs\n")
    print("| index | ef | build | file | recall@10 | p50 per query | p95 |\n|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def _row(name, ef, seconds, size, search, vectors, queries, truth) -> str:
    search(queries[0], ef)  # warm up
    times, recall = [], []
    for q, t in zip(queries, truth):
        start = time.perf_counter()
        found = np.asarray(search(q, ef))
        times.append((time.perf_counter() - start) * 1000)
        recall.append(np.sum(vectors[found] @ q >= t - 1e-6) / K)
    p50, p95 = np.percentile(times, [50, 95])
    return (f"| {name} | {ef} | {seconds:.2f} s | {size / 2**20:.1f} MiB | {np.mean(recall):.3f} | "
            f"{p50:.2f} ms | {p95:.2f} ms |")


if __name__ == "__main__":
    main()
