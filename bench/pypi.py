"""Write PyPI package summaries (the tool library's pypi.tsv) as parquet for benchmarks.

    python bench/pypi.py --rows 100000 --out bench/out/pypi_100k.parquet   # 0 rows = all, else a random sample
"""

import argparse
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from pyarrow import csv

TSV = Path(__file__).resolve().parents[2] / ".library" / "env" / "packages" / "pypi.tsv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tsv", type=Path, default=TSV)
    args = parser.parse_args()
    table = csv.read_csv(
        args.tsv,
        parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=csv.ConvertOptions(column_types={"name": "string", "version": "string",
                                                         "summary": "string", "month": "string"}),
    )
    if args.rows:  # a random sample (seed 0), kept in file order
        keep = np.sort(np.random.default_rng(0).choice(table.num_rows, args.rows, replace=False))
        table = table.take(keep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out)
    print(f"{table.num_rows:,} records -> {args.out}")


if __name__ == "__main__":
    main()
