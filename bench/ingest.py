"""Reading speed of `atlas build`'s ingest: pyarrow's readers alone against read_dataset on a
clean file, and read_dataset's line-by-line fallback on messy JSONL (mixed types, a cut line).

    python bench/ingest.py /work/.library/env/packages/pypi.tsv --records 200000

Prints a markdown table (best of 3 runs).
"""

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from atlas.pipeline.ingest import read_dataset


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def summaries(tsv: Path, n: int) -> list[dict]:
    with open(tsv, newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [{"name": r["name"], "version": r["version"], "summary": r["summary"] or ""}
                for r, _ in zip(rows, range(n))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tsv", type=Path, help="pypi.tsv (name, version, month, rank, summary)")
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    from pyarrow import csv as pcsv
    from pyarrow import json as pjson

    rows = summaries(args.tsv, args.records)
    tmp = Path(tempfile.mkdtemp())
    clean, mixed, cut, table = tmp / "clean.jsonl", tmp / "mixed.jsonl", tmp / "cut.jsonl", tmp / "clean.csv"
    clean.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mixed.write_text("".join(json.dumps({**r, "meta": i if i % 2 else {"rank": i}}) + "\n" for i, r in enumerate(rows)))
    cut.write_text(clean.read_text() + '{"name": "cut", "summ')
    pcsv.write_csv(pjson.read_json(clean), table)

    def dataset(path, **kw):
        return lambda: read_dataset(path, text_columns=("summary",), **kw)

    cases = [
        ("clean JSONL", "pyarrow.json.read_json", lambda: pjson.read_json(clean)),
        ("clean JSONL", "read_dataset", dataset(clean)),
        ("clean CSV", "pyarrow.csv.read_csv", lambda: pcsv.read_csv(table)),
        ("clean CSV", "read_dataset", dataset(table)),
        ("mixed-type `meta` JSONL", "read_dataset (line by line)", dataset(mixed)),
        ("JSONL, last line cut", "read_dataset --skip-bad-lines (line by line)", dataset(cut, skip_bad_lines=True)),
    ]
    print(f"| file ({len(rows):,} records) | reader | seconds | records/s |")
    print("|---|---|---|---|")
    for name, reader, fn in cases:
        seconds = best(fn)
        print(f"| {name} | {reader} | {seconds:.2f} | {len(rows) / seconds:,.0f} |")


if __name__ == "__main__":
    main()
