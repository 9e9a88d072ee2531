"""Write PyPI package summaries (the tool library's pypi.tsv) as parquet for benchmarks.

    python bench/pypi.py --rows 100000 --out bench/out/pypi_100k.parquet   # 0 rows = all, else a random sample
"""

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import csv

LIBRARY_TSV = Path(".library") / "env" / "packages" / "pypi.tsv"  # in a folder above the checkout
TSV = next((p / LIBRARY_TSV for p in Path(__file__).resolve().parents if (p / LIBRARY_TSV).is_file()), None)


def read_pypi(tsv: Path, rows: int = 0) -> pa.Table:
    """The TSV as a table (name, version, month, rank, summary); `rows` > 0: a random sample
    of that many (seed 0), kept in file order."""
    table = csv.read_csv(
        tsv,
        parse_options=csv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=csv.ConvertOptions(column_types={"name": "string", "version": "string",
                                                         "summary": "string", "month": "string"}),
    )
    if rows:
        keep = np.sort(np.random.default_rng(0).choice(table.num_rows, rows, replace=False))
        table = table.take(keep)
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tsv", type=Path, default=TSV, required=TSV is None)
    args = parser.parse_args()
    table = read_pypi(args.tsv, args.rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out)
    summary = table.column("summary")
    lengths = pc.utf8_length(pc.fill_null(summary, ""))
    filled = lengths.filter(pc.greater(lengths, 0))
    print(f"{table.num_rows:,} records -> {args.out}; {table.num_rows - len(filled):,} summaries empty or missing, "
          f"the others {pc.mean(filled).as_py():.0f} characters on average")


if __name__ == "__main__":
    main()
