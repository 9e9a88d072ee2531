"""Read a dataset file and validate it: the text to embed, ids, flags for empty texts."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
           ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
MIN_RECORDS = 10
INPUT_ID_KEY = b"atlas.input_id"  # schema metadata: the input's own `id` field and position, or null
CHAT_FIELDS = (("role", "content"), ("from", "value"))


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


def combined_text(table: pa.Table, text_columns: tuple[str, ...]) -> tuple[pa.ChunkedArray, int]:
    """The text of each record (columns joined by newlines, nulls as ""), and the
    number of records whose bytes were not UTF-8."""
    texts, invalid = zip(*(_column_text(table.column(c), c) for c in text_columns))
    text = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(
        *texts, "\n", null_handling="skip"
    )
    return pc.fill_null(text, ""), int(sum(invalid))


def iter_texts(texts: pa.ChunkedArray, batch: int = 8192) -> Iterator[str]:
    """The texts as Python strings, a batch at a time (never all at once)."""
    for start in range(0, len(texts), batch):
        yield from texts.slice(start, batch).to_pylist()


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


def _column_text(column: pa.ChunkedArray, name: str) -> tuple[pa.ChunkedArray, int]:
    """One string per record from a column: text, bytes, numbers, chats or lists of strings."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column, _count_replaced(column)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return _decode_bytes(column)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.chunked_array([_join_list(chunk, name) for chunk in column.chunks], pa.string()), 0
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return pc.cast(column, pa.string()), 0
    raise AtlasError(f"column {name!r} holds {kind}, not text; pass a text column to --text")


def _count_replaced(column: pa.ChunkedArray) -> int:
    """Records holding U+FFFD: bytes a reader already replaced because they were not UTF-8."""
    return int(pc.sum(pc.cast(pc.greater(pc.count_substring(column, "\ufffd"), 0), pa.int64())).as_py() or 0)


def _decode_bytes(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, int]:
    values, invalid = [], 0
    for raw in column.to_pylist():
        if raw is None:
            values.append(None)
            continue
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            values.append(raw.decode("utf-8", errors="replace"))
            invalid += 1
    return pa.chunked_array([pa.array(values, pa.string())]), invalid


def _join_list(chunk: pa.Array, name: str) -> pa.Array:
    """Render a list of chat turns as `role: content` lines, or join a list of strings."""
    values = chunk.values
    if pa.types.is_struct(values.type):
        fields = {values.type.field(i).name for i in range(values.type.num_fields)}
        for speaker, said in CHAT_FIELDS:
            if {speaker, said} <= fields:
                turns = pc.binary_join_element_wise(
                    pc.fill_null(pc.cast(values.field(speaker), pa.string()), "?"),
                    pc.fill_null(pc.cast(values.field(said), pa.string()), ""),
                    ": ",
                )
                break
        else:
            raise AtlasError(
                f"column {name!r} holds records with fields {', '.join(sorted(fields))}; "
                "chat turns need role/content (OpenAI) or from/value (ShareGPT)"
            )
    elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        turns = values
    else:
        raise AtlasError(f"column {name!r} holds lists of {values.type}, not text")
    lists = type(chunk).from_arrays(chunk.offsets, turns, mask=chunk.is_null())
    return pc.binary_join(lists, "\n")


def _with_ids(table: pa.Table, id_column: str | None) -> pa.Table:
    """Add the string `id` column: from `id_column` (validated) or the row number. The input's
    own `id` field and position are kept in the schema metadata, so an export restores them."""
    input_id = _input_id(table)
    if id_column is None and "id" in table.column_names:
        id_column = "id"
    if id_column is None:
        ids = pa.array(np.arange(table.num_rows).astype(str))
    else:
        if id_column not in table.column_names:
            raise AtlasError(
                f"id column {id_column!r} not found; columns are: {', '.join(table.column_names)}"
            )
        if id_column != "id" and "id" in table.column_names:
            raise AtlasError(
                f"the file has a column named 'id' besides --id {id_column}; "
                "rename it, or pass --id id"
            )
        ids = pc.cast(table.column(id_column), pa.string())
        _check_ids(ids, id_column)
    if "id" in table.column_names:
        table = table.drop_columns(["id"])
    table = table.append_column("id", ids)
    return table.replace_schema_metadata({**(table.schema.metadata or {}), INPUT_ID_KEY: input_id})


def _input_id(table: pa.Table) -> bytes:
    """JSON: {"position", "schema" (the field as a base64 Arrow schema)}, or null without an `id`."""
    if "id" not in table.column_names:
        return b"null"
    schema = pa.schema([table.schema.field("id")]).serialize().to_pybytes()
    return json.dumps({"position": table.column_names.index("id"),
                       "schema": base64.b64encode(schema).decode()}).encode()


def restore_input_id(table: pa.Table) -> pa.Table:
    """The inverse of `_with_ids` for rows of records.parquet: the input's own `id` back at its
    position with its type, or no `id` where Atlas added it. Maps written before this was
    recorded come back unchanged."""
    metadata = dict(table.schema.metadata or {})
    raw = metadata.pop(INPUT_ID_KEY, None)
    if raw is None:
        return table
    value = json.loads(raw)
    ids = table.column("id")
    table = table.drop_columns(["id"]).replace_schema_metadata(metadata)
    if value is None:
        return table
    field = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(value["schema"]))).field(0)
    return table.add_column(value["position"], field, pc.cast(ids, field.type))


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
