"""JSON Lines that pyarrow's reader refuses, parsed line by line.

pyarrow reads a JSONL file fast but whole or not at all: a field whose type changes between
records ("changed from number to object"), a line cut off by a truncated download, or a record
larger than its block fails the file. This reader parses each line with Python's `json`, a block
of lines at a time, and keeps every record it can:

- a column whose values share no type (numbers and objects, text and numbers) is kept as text:
  strings as they are, other values as their JSON;
- a line that is not a JSON object (or `null`, a record with every field empty, as pyarrow
  reads it) is a bad line, reported by its number (1-based).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

LINES_PER_BLOCK = 65_536
_CONVERSION_ERRORS = (pa.ArrowException, OverflowError, TypeError, ValueError, UnicodeError)


@dataclass
class Lines:
    """The records of a file, and its bad lines as (line number, what is wrong: "is ...")."""

    table: pa.Table
    bad: list[tuple[int, str]]


def parse_lines(path: Path) -> Lines:
    """Every line of `path` that is a JSON object, as a table; bytes that are not UTF-8 become U+FFFD."""
    blocks: list[pa.Table] = []
    bad: list[tuple[int, str]] = []
    rows: list[dict] = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8", errors="replace").rstrip("\r\n"))
            except json.JSONDecodeError as e:
                bad.append((number, f"is not valid JSON: {e.msg} (column {e.colno})"))
                continue
            except RecursionError:
                bad.append((number, "is nested too deeply"))
                continue
            if row is None:  # as pyarrow's reader takes it: a record with every field empty
                row = {}
            if not isinstance(row, dict):
                bad.append((number, f"is a JSON {_json_kind(row)}, not an object"))
                continue
            rows.append(row)
            if len(rows) == LINES_PER_BLOCK:
                blocks.append(_block(rows))
                rows = []
    if rows or not blocks:
        blocks.append(_block(rows))
    return Lines(_concat(blocks), bad)


def as_text(value) -> str | None:
    """One value of a column with no single type: a string as it is, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _json_kind(value) -> str:
    return {list: "array", str: "string", bool: "boolean"}.get(type(value), "number" if value is not None else "null")


def _block(rows: list[dict]) -> pa.Table:
    names = list(dict.fromkeys(key for row in rows for key in row))
    return pa.table({name: _column([row.get(name) for row in rows]) for name in names})


def _column(values: list) -> pa.Array:
    try:
        return pa.array(values)
    except _CONVERSION_ERRORS:
        return _text_array([as_text(v) for v in values])


def _text_array(texts: list[str | None]) -> pa.Array:
    try:
        return pa.array(texts, pa.string())
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" escape: replaced by U+FFFD
        return pa.array([None if t is None else t.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
                         for t in texts], pa.string())


def _concat(blocks: list[pa.Table]) -> pa.Table:
    """One table from the blocks; a column whose types do not unify across blocks becomes text."""
    if len(blocks) == 1:
        return blocks[0]
    names = list(dict.fromkeys(name for block in blocks for name in block.column_names))
    for name in names:
        fields = [pa.schema([block.schema.field(name)]) for block in blocks if name in block.column_names]
        try:
            pa.unify_schemas(fields, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            blocks = [_as_text_column(block, name) for block in blocks]
    return pa.concat_tables(blocks, promote_options="permissive")


def _as_text_column(block: pa.Table, name: str) -> pa.Table:
    if name not in block.column_names:
        return block
    index = block.column_names.index(name)
    texts = _text_array([as_text(v) for v in block.column(name).to_pylist()])
    return block.set_column(index, name, texts)
