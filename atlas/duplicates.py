"""Duplicate groups at chosen thresholds, survivor rules, and the "remove duplicates" selection.

The build stores every duplicate pair with its similarity (`dup_pairs.parquet`), so groups
can be formed again at stricter thresholds without recomputing anything; a threshold can
only be raised above the build's, since weaker pairs were never stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.filters import Frame
from atlas.pipeline.dedup import KINDS, components, pick_survivors
from atlas.schema import ID, PAIR_A, PAIR_B, PAIR_KIND, PAIR_SIMILARITY, ROW, TEXT_LEN
from atlas.settings import DedupSettings

RULES = ("longest", "shortest", "first", "max:COL", "min:COL")


@dataclass
class Groups:
    """Duplicate groups over the records, in points order."""

    group: np.ndarray  # int64 (N,): group number, -1 when none
    kind: np.ndarray  # int8 (N,): each record's strictest link, index into KINDS

    @property
    def count(self) -> int:
        return int(self.group.max()) + 1 if len(self.group) else 0

    def sizes(self) -> np.ndarray:
        return np.bincount(self.group[self.group >= 0], minlength=self.count)

    def kinds(self) -> list[str]:
        """Per group, its loosest link (a group held together by one near pair is near)."""
        loosest = np.zeros(self.count, np.int8)
        members = self.group >= 0
        np.maximum.at(loosest, self.group[members], self.kind[members])
        return [KINDS[code] for code in loosest]

    def summary(self) -> dict:
        """Group count, records in groups, and groups per kind."""
        kinds = self.kinds()
        return {"groups": self.count, "records": int((self.group >= 0).sum()),
                "by_kind": {kind: kinds.count(kind) for kind in KINDS[1:]}}


def groups(pairs: pa.Table, n: int, build: DedupSettings, *, near_threshold: float | None = None,
           semantic_threshold: float | None = None) -> Groups:
    """Connected components of the stored pairs that pass the thresholds (None: the build's)."""
    near = _threshold("near", near_threshold, build.near_threshold)
    semantic = _threshold("semantic", semantic_threshold, build.semantic_threshold)
    kind = pc.cast(pairs.column(PAIR_KIND), pa.string()).to_numpy(zero_copy_only=False)
    similarity = pairs.column(PAIR_SIMILARITY).to_numpy()
    edges = np.stack([pairs.column(PAIR_A).to_numpy(), pairs.column(PAIR_B).to_numpy()]).astype(np.int64)
    keep = {"exact": kind == "exact", "near": (kind == "near") & (similarity >= near),
            "semantic": (kind == "semantic") & (similarity >= semantic)}
    group, record_kind = components([edges[:, keep[name]] for name in KINDS[1:]], n)
    return Groups(group, record_kind)


def _threshold(name: str, value: float | None, built: float) -> float:
    if value is None:
        return built
    if not built <= value <= 1:
        raise AtlasError(f"{name} threshold {value} is outside {built}..1: the map stored only pairs at or above "
                         f"the build's {name} threshold ({built}), so thresholds can only be raised")
    return value


def survivors(found: Groups, rule: str, frame: Frame, overrides: Mapping[int, str] | None = None) -> np.ndarray:
    """Bool (N,): the record each group keeps (every record outside groups too).

    Rules: `longest` / `shortest` text, `first` in input order, `max:COL` / `min:COL` of a
    metadata column (missing values last); ties go to the first in input order. `overrides`
    maps a group number to the record id it keeps instead.
    """
    row = frame.points.column(ROW).to_numpy()
    survivor = pick_survivors(found.group, _rule_key(rule, frame), row)
    if overrides:
        positions = _positions(frame, list(overrides.values()))
        wanted = np.array([int(g) for g in overrides], np.int64)
        wrong = found.group[positions] != wanted
        if wrong.any():
            g = int(wanted[wrong][0])
            raise AtlasError(f"record {list(overrides.values())[int(np.argmax(wrong))]!r} is not in duplicate "
                             f"group {g}; pick one of that group's members")
        survivor[np.isin(found.group, wanted)] = False
        survivor[positions] = True
    return survivor


def _rule_key(rule: str, frame: Frame) -> np.ndarray:
    """A sort key per record: the survivor sorts first."""
    text_len = frame.points.column(TEXT_LEN).to_numpy().astype(np.int64)
    if rule == "longest":
        return -text_len
    if rule == "shortest":
        return text_len
    if rule == "first":
        return frame.points.column(ROW).to_numpy()
    order, _, column = rule.partition(":")
    if order in ("max", "min") and column:
        values = frame.column(column)
        direction = "descending" if order == "max" else "ascending"
        ranks = pc.rank(values, sort_keys=[("", direction, "at_end")], tiebreaker="min")
        return ranks.to_numpy().astype(np.int64)
    raise AtlasError(f"survivor rule is one of {', '.join(RULES)}, not {rule!r}")


def _positions(frame: Frame, ids: list[str]) -> np.ndarray:
    found = pc.index_in(pa.array(ids, pa.string()), value_set=frame.points.column(ID))
    missing = [i for i, p in zip(ids, found.to_pylist()) if p is None]
    if missing:
        raise AtlasError(f"unknown record id(s): {', '.join(map(repr, missing[:5]))}")
    return found.to_numpy().astype(np.int64)


def overrides_for(found: Groups, frame: Frame, ids: list[str]) -> dict[int, str]:
    """{group: id} for records that should survive their group, skipping ids not on this map."""
    positions = pc.index_in(pa.array(ids, pa.string()), value_set=frame.points.column(ID)).to_pylist()
    return {int(found.group[p]): i for i, p in zip(ids, positions) if p is not None and found.group[p] >= 0}


def removable(found: Groups, survivor: np.ndarray) -> np.ndarray:
    """Bool (N,): every record in a group that is not its survivor."""
    return (found.group >= 0) & ~survivor
