"""Semantic search: recall@10 and time per query against the number of fine topics probed.

    python bench/semantic_recall.py bench/out/pypi_all_static [--queries 50] [--probe 24 48 96 160]
        [--expansion-search 128 512] [--rebuild f16 bf16]

A map with an ANN index (above SearchSettings.index_from records) gets a row per search beam
(default: the one the map was built with). Queries are the first six words of random records
(seed 0); the truth is the exact scan of every vector (`probe` 0). A found record counts as a
hit when it scores at least the exact scan's 10th best (PyPI holds many equal summaries: a tie
the exact scan happened to leave out is not a miss), as in bench/ann.py. Time per query
includes embedding the query, as the server does. `--rebuild` also builds the index again
from the map's vectors with this code's `build_index`, once per stored type, and searches
that (the map directory is not changed). Prints the markdown table of
docs/BENCHMARKS.md.
"""

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

from atlas.mapdir import MapDir
from atlas.query import PROBE_TOPICS, MapData
from atlas.settings import SearchSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--probe", type=int, nargs="+", default=[PROBE_TOPICS, 48, 96, 160])
    parser.add_argument("--expansion-search", type=int, nargs="+", help="ANN search beams to try")
    parser.add_argument("--rebuild", nargs="+", default=[], metavar="DTYPE", help="also an index built now, per type")
    args = parser.parse_args()
    data = MapData(MapDir(args.map))
    rng = random.Random(0)
    texts = [t for t in (data.text[i].as_py() for i in rng.sample(range(len(data.x)), args.queries * 2)) if t.strip()]
    queries = [" ".join(t.split()[:6]) for t in texts[: args.queries]]
    data.semantic_positions("warm up", 10, probe=1)  # load the embedder and the topic lists first
    topics = len(np.unique(data.levels[-1]))
    rows, truth = [], None
    beams = args.expansion_search or [data.ann.expansion_search if data.ann else SearchSettings.expansion_search]
    probes = [0, *sorted(p for p in args.probe if p < topics)]
    # the map's own index (when it has one) and those built now: --rebuild works on a map without one too
    indexes = ([("", data.ann)] if data.ann is not None else []) + [
        (f" (rebuilt, {dtype})", rebuilt(data, dtype)) for dtype in args.rebuild]
    runs = [(p, None, "", None) for p in probes] + [(None, b, kind, index) for kind, index in indexes for b in beams]
    for probe, beam, kind, index in runs:
        if beam:
            data.ann = index
            data.ann.expansion_search = beam
        times, found = [], []
        for query in queries:
            start = time.perf_counter()
            found.append(data.semantic_positions(query, 10, probe=probe)[1])
            times.append((time.perf_counter() - start) * 1000)
        truth = truth or found
        recall = np.mean([np.mean(f >= t.min() - 1e-6) if len(t) else 1.0 for f, t in zip(found, truth)])
        name = (f"none: the ANN index{kind}, search beam {beam}" if beam else "every vector (exact)" if probe == 0
                else f"{probe}{' (default without an index)' if probe == PROBE_TOPICS else ''}")
        p50, p95 = np.percentile(times, [50, 95])
        rows.append(f"| {name} | {recall:.2f} | {p50:.0f} ms | {p95:.0f} ms |")
    print(f"`python {' '.join(sys.argv)}`: {len(data.x):,} records, {topics} fine topics, "
          f"{len(queries)} queries\n")
    print("| topics probed | recall@10 | p50 per query | p95 |\n|---|---|---|---|")
    print("\n".join(rows))


def rebuilt(data: MapData, dtype: str):
    """The map's ANN index built again from its vectors as `atlas build` builds it now, stored as `dtype`."""
    from atlas.pipeline.ann import build_index

    vectors = data.embeddings
    return build_index(vectors, np.arange(len(vectors)), settings=SearchSettings(ann_dtype=dtype), seed=None)


if __name__ == "__main__":
    main()
