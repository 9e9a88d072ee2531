"""The keywords stage's cost as the data grows: `topic_terms` (the c-TF-IDF counts that
`topic_keywords` ranks) on the first N records of a built map's input, with the map's topics,
for each N; prints seconds and records/s, so a cost that grows faster than N shows.

    python bench/keywords.py bench/out/scale/pypi_all_5000000_synthetic.parquet \\
        --map bench/out/scale/pypi_all_5000000_synthetic_local --text summary --records 886323 2000000 5000000
"""

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path, help="the map's input file")
    parser.add_argument("--map", type=Path, required=True, help="the map directory built from it")
    parser.add_argument("--text", required=True)
    parser.add_argument("--records", type=int, nargs="+", required=True)
    args = parser.parse_args()
    from atlas.pipeline.ingest import read_dataset
    from atlas.pipeline.keywords import term_counter, topic_terms

    text = read_dataset(args.source, text_columns=(args.text,), id_column=None, input_format=None,
                        skip_bad_lines=False).text
    labels = map_topics(args.map)
    term_counter(0)  # scikit-learn's import, outside the timings
    print("| records | seconds | records/s | terms |")
    print("|---|---|---|---|")
    for n in args.records:
        start = time.perf_counter()
        vocab, _ = topic_terms(text.slice(0, n), labels[:, :n], int(labels.max()) + 1, term_counter(n))
        seconds = time.perf_counter() - start
        print(f"| {n:,} | {seconds:.1f} | {n / seconds:,.0f} | {len(vocab):,} |", flush=True)


def map_topics(map_dir: Path) -> np.ndarray:
    """int64 (levels, N): each record's topic per level, in input order (as the build passes them)."""
    from atlas.mapdir import MapDir
    from atlas.schema import ROW, topic_columns

    mapdir = MapDir(map_dir)
    levels = topic_columns(mapdir.manifest()["levels"])
    points = mapdir.points([ROW, *levels])
    labels = np.zeros((len(levels), points.num_rows), np.int64)
    for level, name in enumerate(levels):
        labels[level, points.column(ROW).to_numpy()] = points.column(name).to_numpy()
    return labels


if __name__ == "__main__":
    main()
