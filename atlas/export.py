"""Export the kept records as parquet: the input's columns and types, in input order, plus extras.

The file is written beside `out` under a temporary name and renamed into place, so a reader
never sees half a file and a failed export leaves any previous one untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas.errors import AtlasError
from atlas.records import restore_input_id
from atlas.schema import DUP_COLUMNS, ROW, topic_column

if TYPE_CHECKING:
    from atlas.curation import Curation

EXTRAS = ("topic_labels", "dup", "tags")
PREFIX = "atlas_"


def export(mapdir: str | os.PathLike | Curation, out: str | os.PathLike, *,
           extras: tuple[str, ...] = EXTRAS, include_removed: bool = False, where: str | None = None) -> int:
    """Write `export_table` to `out` (atomically); returns the row count."""
    table = export_table(mapdir, extras=extras, include_removed=include_removed, where=where)
    write_atomic(Path(out), lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    return table.num_rows


def export_table(mapdir: str | os.PathLike | Curation, *, extras: tuple[str, ...] = EXTRAS,
                 include_removed: bool = False, where: str | None = None) -> pa.Table:
    """The records that are kept (not removed unless `include_removed`, matching the filter
    `where`), in input order with the input's columns and types.

    Extras, as columns named atlas_*: `topic_labels` (atlas_topic_0.. the label per level),
    `dup` (atlas_dup_group, atlas_dup_kind, atlas_dup_survivor) and `tags` (atlas_tags,
    list<string>). The `id` column is as in the input (absent when Atlas numbered the rows).
    """
    from atlas.curation import Curation

    _check_extras(extras)
    curation = mapdir if isinstance(mapdir, Curation) else Curation(mapdir)
    mask = curation.kept(where, include_removed=include_removed)
    rows = curation.frame.points.column(ROW).to_numpy()
    positions = np.flatnonzero(mask)[np.argsort(rows[mask], kind="stable")]  # input order
    table = restore_input_id(curation.frame.records.take(pa.array(rows[positions])))
    for name, column in extra_columns(curation, positions, extras).items():
        if name in table.column_names:
            raise AtlasError(f"the input already has a column {name!r}; rename it, or export without that extra")
        table = table.append_column(name, column)
    return table


def parse_extras(text: str) -> tuple[str, ...]:
    """The extras of a `--with` / `with=` value: names separated by commas, e.g. "dup,tags"."""
    return _check_extras(tuple(name.strip() for name in text.split(",") if name.strip()))


def _check_extras(extras: tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(extras) - set(EXTRAS))
    if unknown:
        raise AtlasError(f"unknown extra(s) {', '.join(unknown)}; choose from {', '.join(EXTRAS)}")
    return extras


def extra_columns(curation: Curation, positions: np.ndarray, extras: tuple[str, ...]) -> dict[str, pa.Array]:
    """The requested extra columns for the records at `positions` (points order)."""
    points, take = curation.frame.points, pa.array(positions)
    columns: dict[str, pa.Array] = {}
    if "topic_labels" in extras:
        labels = curation.topics.column("label").combine_chunks()
        for level in range(curation.manifest["levels"]):
            columns[PREFIX + topic_column(level)] = labels.take(points.column(topic_column(level)).take(take))
    if "dup" in extras:
        for name in DUP_COLUMNS:
            columns[PREFIX + name] = points.column(name).take(take)
    if "tags" in extras:
        columns[f"{PREFIX}tags"] = tag_lists(curation.state().tags, positions)
    return columns


def tag_lists(tags: dict[str, np.ndarray], positions: np.ndarray) -> pa.ListArray:
    """list<string> of each record's tags, sorted by name, for the records at `positions`."""
    names = sorted(tags)
    has = np.zeros((len(positions), len(names)), bool)  # (records, tags)
    for j, name in enumerate(names):
        has[:, j] = tags[name][positions]
    record, tag = np.nonzero(has)  # row-major: grouped by record, tags in name order
    offsets = np.r_[0, np.cumsum(np.bincount(record, minlength=len(positions)))].astype(np.int32)
    return pa.ListArray.from_arrays(offsets, pa.array(np.array(names, object)[tag], pa.string()))


def write_atomic(out: Path, write: Callable[[Path], None]) -> None:
    """Call `write` on a temporary file in `out`'s directory, then rename it to `out`. The
    temporary name is unique, and the file is private to its owner (0600): it holds the data."""
    if out.is_dir():
        raise AtlasError(f"{out} is a directory; give a file name such as {out / 'clean.parquet'}")
    if not out.parent.exists():
        raise AtlasError(f"the folder {out.parent} does not exist; create it or choose another --out")
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")  # unique, 0600
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
