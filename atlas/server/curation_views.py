"""What the curation routes return, as plain data: the edit state, selection summaries,
histograms of a filtered set, duplicate groups and topic balance. Masks are in points order."""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.curation import Curation, Groups, Removal
from atlas.query import MapData
from atlas.schema import LABEL, TEXT_LEN

LOG_ENTRIES = 20
SAMPLE = 1000
BINS = 20
TOP_VALUES = 15


class Views:
    """The server's Curation and MapData together, plus the tiles' active masks (cached per
    edit-log seq and filter: the log, not this object, is the truth, so two tabs stay in step)."""

    def __init__(self, curation: Curation, data: MapData):
        self.curation, self.data = curation, data
        self._active: OrderedDict[tuple[int, str], np.ndarray | None] = OrderedDict()
        self._lock = threading.Lock()

    def state(self) -> dict:
        state = self.curation.state()
        removed = state.removed
        entries, in_force, undone = self.curation.history()
        applied = {e.seq for e in in_force}
        return {
            "edit_seq": entries[-1].seq if entries else 0,  # the log's last entry: every edit, undo, redo
            "total": len(removed),
            "kept": int((~removed).sum()), "removed": int(removed.sum()),
            "tags": {name: int(mask.sum()) for name, mask in state.tags.items()},
            "can_undo": bool(applied), "can_redo": bool(undone),
            "log": [{**dataclasses.asdict(e), "in_force": e.seq in applied} for e in entries[-LOG_ENTRIES:][::-1]],
        }

    def active(self, where: str | None) -> tuple[str, np.ndarray | None]:
        """(key of the edits and filter drawn, bool mask of the points drawn in colour: kept and
        matching `where`; None when that is every point)."""
        seq = self.curation.log.last_seq()
        key = (seq, where or "")
        with self._lock:
            if key not in self._active:
                mask = self.curation.kept(where)
                self._active[key] = None if mask.all() else mask
                if len(self._active) > 8:
                    self._active.popitem(last=False)
            self._active.move_to_end(key)
            mask = self._active[key]
        digest = hashlib.blake2b((where or "").encode(), digest_size=6).hexdigest() if where else "all"
        return f"{seq}-{digest}", mask

    def selection(self, selected: np.ndarray) -> dict:
        removed = self.curation.state().removed
        return {"count": int(selected.sum()), "kept": int((selected & ~removed).sum()),
                "topics": [self.breakdown(selected, level) for level in sorted({0, len(self.data.levels) - 1})],
                "sample": self.sample(selected)}

    def breakdown(self, mask: np.ndarray, level: int) -> dict:
        """Records of `mask` per topic at `level`, biggest first, with labels."""
        ids, counts = np.unique(self.data.levels[level][mask], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return {"level": level, "topics": [{"topic_id": int(ids[i]), "label": self.data.topics[ids[i]][LABEL],
                                            "count": int(counts[i])} for i in order]}

    def sample(self, mask: np.ndarray, limit: int = SAMPLE) -> list[dict]:
        """Up to `limit` records of `mask`, evenly spread over points order."""
        found = np.flatnonzero(mask)
        if len(found) > limit:
            found = found[np.linspace(0, len(found) - 1, limit).astype(np.int64)]
        ids = self.data.ids.take(pa.array(found)).to_pylist()
        return [{"id": i, "snippet": self.data.snippet(int(p)), "x": float(self.data.x[p]), "y": float(self.data.y[p])}
                for i, p in zip(ids, found)]

    def filtered(self, where: str | None, level: int, column: str | None) -> dict:
        """Counts and histograms of the kept records matching `where`."""
        curation = self.curation
        matched = curation.frame.mask(where)
        kept = matched & ~curation.state().removed
        text_len = curation.frame.points.column(TEXT_LEN).to_numpy()
        out = {"where": where, "matched": int(matched.sum()), "kept": int(kept.sum()), "total": len(kept),
               "columns": self.columns(), "text_len": numeric_histogram(text_len[kept], log=True),
               "topics": self.breakdown(kept, level)}
        if column:
            out["column"] = {"name": column, **column_histogram(curation.frame.column(column).filter(pa.array(kept)))}
        return out

    def columns(self) -> list[dict]:
        """The metadata columns a filter, a histogram or a survivor rule can name, with their kind."""
        records = self.curation.frame.records.schema
        return [{"name": name, "numeric": pa.types.is_integer(kind) or pa.types.is_floating(kind)}
                for name, kind in zip(records.names, records.types) if name in self.curation.frame.metadata_columns()]

    def duplicates(self, found: Groups, removal: Removal, offset: int, limit: int) -> dict:
        """The group summary, how many records removal would take, and the largest groups, each
        with the record that keeps the most others in its place."""
        removed = self.curation.state().removed
        sizes, kinds = found.sizes(), found.group_kinds()
        order = np.argsort(-sizes, kind="stable")[offset:offset + limit]
        removable = removal.removable
        keeps = np.bincount(removal.replaced_by, minlength=len(removable))
        members = np.flatnonzero(found.group >= 0)
        members = members[np.lexsort((-keeps[members], found.group[members]))]
        first = members[np.diff(found.group[members], prepend=-1) != 0]
        shown = np.full(found.count, -1, np.int64)
        shown[found.group[first]] = first
        built = self.curation.manifest["settings"]["dedup"]
        return {**found.summary(), "removable": int(removable.sum()),
                "built": {"near_threshold": built["near_threshold"], "semantic_threshold": built["semantic_threshold"]},
                "removable_kept": int((removable & ~removed).sum()), "offset": offset,
                "largest": [{"group": int(g), "size": int(sizes[g]), "kind": kinds[g],
                             "survivor": self.data.snippet(int(shown[g]))} for g in order]}

    def group(self, found: Groups, removal: Removal, group: int) -> list[dict]:
        """The members of one group with their whole text, the kept ones first; a removable
        member names the record kept in its place and the kind of their pair."""
        removed = self.curation.state().removed
        members = np.flatnonzero(found.group == group)
        survivor = removal.survivor
        out = []
        for p in members[np.argsort(~survivor[members], kind="stable")]:
            text = self.data.text[int(p)].as_py()
            replaced = None if survivor[p] else {"id": self.data.ids[int(removal.replaced_by[p])].as_py(),
                                                 "kind": removal.kind(p)}
            out.append({"id": self.data.ids[int(p)].as_py(), "text": text, "text_len": len(text),
                        "survivor": bool(survivor[p]), "removed": bool(removed[p]), "replaced_by": replaced})
        return out

    def balance(self, level: int) -> dict:
        kept = ~self.curation.state().removed
        rows = self.breakdown(kept, level)["topics"]
        total = max(int(kept.sum()), 1)
        return {"level": level, "kept": int(kept.sum()),
                "topics": [{**row, "share": round(row["count"] / total, 5)} for row in rows]}


def numeric_histogram(values: np.ndarray, log: bool = False) -> list[dict]:
    """BINS bins over the values' range ({lo, hi, count}); log-spaced when `log`."""
    values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if len(values) == 0:
        return []
    lo, hi = float(values.min()), float(values.max())
    if log and lo >= 0:
        edges = np.unique(np.round(np.geomspace(lo + 1, hi + 2, BINS + 1) - 1))
    else:
        edges = np.linspace(lo, hi if hi > lo else lo + 1, BINS + 1)
    counts, edges = np.histogram(values, bins=edges)
    return [{"lo": float(a), "hi": float(b), "count": int(c)} for a, b, c in zip(edges[:-1], edges[1:], counts)]


def column_histogram(array: pa.Array) -> dict:
    """Bins for a numeric column, else its most common values ({value, count})."""
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        values = array.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
        return {"kind": "numeric", "bins": numeric_histogram(values), "missing": array.null_count}
    counts = pc.value_counts(pc.cast(array, pa.string()) if not pa.types.is_string(array.type) else array)
    values, numbers = counts.field("values").to_pylist(), counts.field("counts").to_numpy()
    order = np.argsort(-numbers, kind="stable")[:TOP_VALUES]
    return {"kind": "categorical", "distinct": len(values),
            "values": [{"value": values[i], "count": int(numbers[i])} for i in order]}
