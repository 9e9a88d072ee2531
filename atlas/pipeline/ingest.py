"""Read a dataset file and validate it: the text to embed, ids, flags for empty texts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.records import INPUT_ID_KEY, combined_text, input_id_metadata
from atlas.schema import ID

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
           ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
MIN_RECORDS = 10


@dataclass
class Dataset:
    """The input as read: all original columns plus `id`, in input order."""

    table: pa.Table
    text: pa.ChunkedArray  # the text to embed, one string per record ("" when empty)
    empty: np.ndarray  # bool: the text is empty or whitespace only
    invalid_utf8: int  # records whose text had bytes that are not UTF-8 (replaced by U+FFFD)
    format: str


def read_dataset(
    path: Path,
    *,
    text_columns: tuple[str, ...],
    id_column: str | None = None,
    input_format: str | None = None,
) -> Dataset:
    """Read `path` and build the text to embed from `text_columns` (joined by newlines)."""
    fmt = detect_format(path, input_format)
    table = _read_table(path, fmt)
    if table.num_rows == 0:
        raise AtlasError(f"{path} has no records")
    missing = [c for c in text_columns if c not in table.column_names]
    if missing:
        raise AtlasError(
            f"column {missing[0]!r} not found; columns are: {', '.join(table.column_names)}"
        )
    text, invalid = combined_text(table, text_columns)
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0).to_numpy(zero_copy_only=False)
    if empty.all():
        raise AtlasError(f"all {len(empty):,} texts in {', '.join(text_columns)} are empty")
    if table.num_rows < MIN_RECORDS:
        raise AtlasError(
            f"{path} has {table.num_rows} record(s); a map needs at least {MIN_RECORDS}"
        )
    table = _with_ids(table, id_column)
    return Dataset(table, text, empty, invalid, fmt)


def detect_format(path: Path, override: str | None) -> str:
    if not path.exists():
        raise AtlasError(f"{path} does not exist")
    if override:
        if override not in set(FORMATS.values()):
            raise AtlasError(f"unknown format {override!r}; use one of: parquet, csv, tsv, jsonl")
        return override
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AtlasError(
            f"cannot tell the format of {path.name} from its extension; "
            "use .parquet, .csv, .tsv or .jsonl, or pass --format parquet|csv|tsv|jsonl"
        )
    return fmt


def _read_table(path: Path, fmt: str) -> pa.Table:
    import pyarrow.parquet as pq
    from pyarrow import csv, json

    if path.stat().st_size == 0:
        raise AtlasError(f"{path} is empty")
    try:
        if fmt == "parquet":
            return pq.read_table(path)
        if fmt in ("csv", "tsv"):
            parse = csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True)
            return csv.read_csv(path, parse_options=parse)
        return _read_jsonl(path, json)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
        raise AtlasError(f"cannot read {path} as {fmt}: {_first_line(e)}") from None


def _read_jsonl(path: Path, json) -> pa.Table:
    try:
        return json.read_json(path)
    except pa.ArrowInvalid as e:
        if "UTF8" not in str(e) and "utf-8" not in str(e).lower():
            raise
    # Replace bytes that are not UTF-8, then parse again; the text column counts them.
    repaired = path.read_bytes().decode("utf-8", errors="replace").encode()
    return json.read_json(pa.BufferReader(repaired))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _with_ids(table: pa.Table, id_column: str | None) -> pa.Table:
    """Add the string `id` column: from `id_column` (validated) or the row number. The input's
    own `id` field and position are kept in the schema metadata, so an export restores them."""
    input_id = input_id_metadata(table)
    if id_column is None and ID in table.column_names:
        id_column = ID
    if id_column is None:
        ids = pa.array(np.arange(table.num_rows).astype(str))
    else:
        if id_column not in table.column_names:
            raise AtlasError(
                f"id column {id_column!r} not found; columns are: {', '.join(table.column_names)}"
            )
        if id_column != ID and ID in table.column_names:
            raise AtlasError(
                f"the file has a column named 'id' besides --id {id_column}; "
                "rename it, or pass --id id"
            )
        ids = pc.cast(table.column(id_column), pa.string())
        _check_ids(ids, id_column)
    if ID in table.column_names:
        table = table.drop_columns([ID])
    table = table.append_column(ID, ids)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), INPUT_ID_KEY: input_id})


def _check_ids(ids: pa.ChunkedArray, name: str) -> None:
    nulls = np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False))
    if len(nulls):
        rows = ", ".join(str(r) for r in nulls[:5])
        raise AtlasError(f"id column {name!r} is empty in {len(nulls):,} rows (first: rows {rows})")
    values = ids.to_numpy(zero_copy_only=False)
    _, first, counts = np.unique(values, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = values[np.sort(first[counts > 1])[0]]
        rows = np.flatnonzero(values == dup)[:5]
        raise AtlasError(
            f"id column {name!r} has duplicate values: {dup!r} at rows "
            f"{', '.join(str(r) for r in rows)} ({int((counts > 1).sum()):,} duplicated ids); "
            "pass a unique column to --id, or leave --id out to number the rows"
        )
