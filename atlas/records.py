"""The records format: how a record's text is built from its columns, and the input's own `id`.

records.parquet holds every input row with its original columns plus the string `id` Atlas
validated or numbered; the input's own `id` field (type and position) is kept in the schema
metadata under INPUT_ID_KEY. The build (pipeline.ingest), the views and the export all read
records through these functions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.schema import ID

INPUT_ID_KEY = b"atlas.input_id"  # schema metadata: the input's own `id` field and position, or null
CHAT_FIELDS = (("role", "content"), ("from", "value"))


def combined_text(table: pa.Table, text_columns: tuple[str, ...]) -> tuple[pa.ChunkedArray, int]:
    """The text of each record (columns joined by newlines, nulls as ""), and the
    number of records whose bytes were not UTF-8."""
    texts, invalid = zip(*(_column_text(table.column(c), c) for c in text_columns))
    text = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(
        *texts, "\n", null_handling="skip"
    )
    return pc.fill_null(text, ""), int(sum(invalid))


def iter_texts(texts: pa.ChunkedArray, rows: np.ndarray, batch: int = 8192) -> Iterator[str]:
    """The texts at `rows`, in that order, as Python strings, taken a batch at a time (never
    all at once, nor a reordered copy of the column)."""
    for start in range(0, len(rows), batch):
        yield from texts.take(pa.array(rows[start:start + batch])).to_pylist()


def point_texts(records: pa.Table, text_columns: list[str], rows: np.ndarray) -> pa.Array:
    """The text of each point: the records' text columns (the manifest's) joined, taken at
    `rows` (points.parquet's `row` column), so in points order."""
    text, _ = combined_text(records, tuple(text_columns))
    return text.take(pa.array(rows)).combine_chunks()


def _column_text(column: pa.ChunkedArray, name: str) -> tuple[pa.ChunkedArray, int]:
    """One string per record from a column: text, bytes, numbers, chats or lists of strings."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column, _count_replaced(column)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return decode_bytes(column)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.chunked_array([_join_list(chunk, name) for chunk in column.chunks], pa.string()), 0
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return pc.cast(column, pa.string()), 0
    raise AtlasError(f"column {name!r} holds {kind}, not text; pass a text column to --text")


def _count_replaced(column: pa.ChunkedArray) -> int:
    """Records holding U+FFFD: bytes a reader already replaced because they were not UTF-8."""
    return int(pc.sum(pc.cast(pc.greater(pc.count_substring(column, "\ufffd"), 0), pa.int64())).as_py() or 0)


def decode_bytes(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, int]:
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


def input_id_metadata(table: pa.Table) -> bytes:
    """JSON: {"position", "schema" (the field as a base64 Arrow schema)}, or null without an `id`."""
    if ID not in table.column_names:
        return b"null"
    schema = pa.schema([table.schema.field(ID)]).serialize().to_pybytes()
    return json.dumps({"position": table.column_names.index(ID),
                       "schema": base64.b64encode(schema).decode()}).encode()


def restore_input_id(table: pa.Table) -> pa.Table:
    """The inverse of ingest's `_with_ids` for rows of records.parquet: the input's own `id` back at its
    position with its type, or no `id` where Atlas added it. Maps written before this was
    recorded come back unchanged."""
    metadata = dict(table.schema.metadata or {})
    raw = metadata.pop(INPUT_ID_KEY, None)
    if raw is None:
        return table
    value = json.loads(raw)
    ids = table.column(ID)
    table = table.drop_columns([ID]).replace_schema_metadata(metadata)
    if value is None:
        return table
    field = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(value["schema"]))).field(0)
    return table.add_column(value["position"], field, pc.cast(ids, field.type))
