"""Read a dataset file and validate it: the text to embed, ids, flags for empty texts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.pipeline.jsonlines import Lines, as_text, parse_lines
from atlas.records import INPUT_ID_KEY, combined_text, decode_bytes, input_id_metadata
from atlas.schema import ID

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
           ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
MIN_RECORDS = 10
MAX_TEXT_CHARS = 100_000  # longer texts are embedded, indexed and deduplicated by their start
BIGGEST_BLOCK = 1 << 30  # pyarrow's CSV block size limit (int32)


@dataclass
class Dataset:
    """The input as read: all original columns plus `id`, in input order."""

    table: pa.Table
    text: pa.ChunkedArray  # the text to analyse, one string per record ("" when empty), cut to MAX_TEXT_CHARS
    length: np.ndarray  # int64: characters in each whole text
    empty: np.ndarray  # bool: the text is empty or whitespace only
    invalid_utf8: int  # records whose text had bytes that are not UTF-8 (replaced by U+FFFD)
    format: str
    skipped_lines: list[int] = field(default_factory=list)  # bad lines left out (--skip-bad-lines)

    @property
    def cut(self) -> int:
        """Texts longer than MAX_TEXT_CHARS (analysed by their start; their records keep them whole)."""
        return int((self.length > MAX_TEXT_CHARS).sum())


def read_dataset(
    path: Path,
    *,
    text_columns: tuple[str, ...],
    id_column: str | None = None,
    input_format: str | None = None,
    skip_bad_lines: bool = False,
) -> Dataset:
    """Read `path` and build the text to embed from `text_columns` (joined by newlines).

    A CSV, TSV or JSONL line that cannot be read is an error naming its line number, or, with
    `skip_bad_lines`, left out and listed in `Dataset.skipped_lines`."""
    fmt = detect_format(path, input_format)
    table, skipped = _read_table(path, fmt, skip_bad_lines)
    if table.num_rows == 0:
        raise AtlasError(f"{path} has no records")
    missing = [c for c in text_columns if c not in table.column_names]
    if missing:
        raise AtlasError(
            f"column {missing[0]!r} not found; columns are: {', '.join(table.column_names)}"
        )
    text, invalid = combined_text(table, text_columns)
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0).to_numpy(zero_copy_only=False)
    length = pc.utf8_length(text).to_numpy().astype(np.int64)
    if empty.all():
        raise AtlasError(f"all {len(empty):,} texts in {', '.join(text_columns)} are empty")
    if table.num_rows < MIN_RECORDS:
        raise AtlasError(
            f"{path} has {table.num_rows} record(s); a map needs at least {MIN_RECORDS}"
        )
    table = _with_ids(table, id_column)
    if (length > MAX_TEXT_CHARS).any():  # a 50 MB record would take minutes in every stage
        text = pc.utf8_slice_codeunits(text, 0, MAX_TEXT_CHARS)
    return Dataset(table, text, length, empty, invalid, fmt, skipped)


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


def _read_table(path: Path, fmt: str, skip_bad_lines: bool) -> tuple[pa.Table, list[int]]:
    """The file as a table, and the numbers of the bad lines left out."""
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise AtlasError(f"{path} is empty")
    try:
        if fmt == "parquet":
            return pq.read_table(path), []
        lines = _read_csv(path, fmt) if fmt in ("csv", "tsv") else _read_jsonl(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
        raise AtlasError(f"cannot read {path} as {fmt}: {_first_line(e)}") from None
    if lines.bad and not skip_bad_lines:
        them = "it" if len(lines.bad) == 1 else "them"
        raise AtlasError(f"cannot read {path} as {fmt}: {_bad_lines(lines.bad)}; "
                         f"fix {them}, or pass --skip-bad-lines to leave {them} out")
    return lines.table, [number for number, _ in lines.bad]


def _bad_lines(bad: list[tuple[int, str]]) -> str:
    """`line 7 is ...` or `3 lines are bad (lines 7, 9, 12); line 7: ...`, at most 10 numbers."""
    first, why = bad[0]
    if len(bad) == 1:
        return f"line {first} {why}"
    numbers = ", ".join(str(n) for n, _ in bad[:10]) + (", ..." if len(bad) > 10 else "")
    return f"{len(bad):,} lines are bad (lines {numbers}); line {first} {why}"


def _read_csv(path: Path, fmt: str) -> Lines:
    """pyarrow's CSV reader; rows with the wrong number of fields are collected, then read
    again on one thread (which numbers them) only when there are some. (A bad row that is not
    UTF-8 fails the file: pyarrow cannot hand it to the handler.)"""
    from pyarrow import csv

    def read(threads: bool, block_size: int | None = None) -> Lines:
        bad: list[tuple[int, str]] = []

        def invalid(row) -> str:
            bad.append((row.number, f"has {row.actual_columns} fields, the header {row.expected_columns}"))
            return "skip"

        parse = csv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True,
                                 invalid_row_handler=invalid)
        options = csv.ReadOptions(use_threads=threads, **({"block_size": block_size} if block_size else {}))
        return Lines(csv.read_csv(path, read_options=options, parse_options=parse), bad)

    block_size = None
    try:
        lines = read(True)
    except pa.ArrowInvalid as e:
        if "straddling" not in str(e):
            raise
        block_size = min(path.stat().st_size + 1, BIGGEST_BLOCK)  # a record longer than a block
        lines = read(True, block_size)
    lines = read(False, block_size) if lines.bad else lines
    return Lines(_text_not_bytes(lines.table), lines.bad)


def _text_not_bytes(table: pa.Table) -> pa.Table:
    """Columns the CSV reader typed binary (bytes that are not UTF-8: latin-1, cp1252) as text,
    those bytes replaced by U+FFFD (counted later for the text columns)."""
    for index, kind in enumerate(table.schema.types):
        if pa.types.is_binary(kind):
            table = table.set_column(index, table.column_names[index], decode_bytes(table.column(index))[0])
    return table


def _read_jsonl(path: Path) -> Lines:
    """pyarrow's fast reader; when it refuses the file (types that change between records, bad
    lines, bytes that are not UTF-8, a huge record), a line-by-line parse that keeps what it can."""
    from pyarrow import json

    try:
        table = json.read_json(path)
        table.validate(full=True)  # pyarrow 26 can build a broken list<null> for a field first seen late
        lines = Lines(table, [])
    except pa.ArrowInvalid:
        lines = parse_lines(path)
        if lines.table.num_rows == 0 and lines.bad:
            raise AtlasError(f"cannot read {path} as jsonl: no line is a JSON object (line {lines.bad[0][0]} "
                             f"{lines.bad[0][1]}); a .jsonl file holds one JSON object per line") from None
    return Lines(_storable(lines.table), lines.bad)


def _storable(table: pa.Table) -> pa.Table:
    """Columns parquet cannot store (objects that are always empty, `{}`) as JSON text."""
    for index, name in enumerate(table.column_names):
        if _has_empty_struct(table.schema.field(index).type):
            texts = [as_text(v) for v in table.column(index).to_pylist()]
            table = table.set_column(index, name, pa.array(texts, pa.string()))
    return table


def _has_empty_struct(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind) and kind.num_fields == 0:
        return True
    return any(_has_empty_struct(kind.field(i).type) for i in range(kind.num_fields))


def _first_line(error: Exception) -> str:
    """The error's first line, control characters escaped (a reader may quote binary input)."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)


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
    blank = pc.or_kleene(ids.is_null(), pc.equal(ids, ""))  # "" names no record (nor a URL)
    nulls = np.flatnonzero(pc.fill_null(blank, True).to_numpy(zero_copy_only=False))
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
