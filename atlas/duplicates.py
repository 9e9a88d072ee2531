"""Duplicate groups at chosen thresholds and kinds, survivor rules, and the "remove duplicates"
selection.

The build stores every duplicate pair with its similarity (`dup_pairs.parquet`), so groups
can be formed again at stricter thresholds without recomputing anything; a threshold can
only be raised above the build's, since weaker pairs were never stored. Groups are connected
components (whole neighbourhoods, for review); removal never follows a chain: each removed
record is directly paired with the record kept in its place (atlas.pipeline.dedup.replacements).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.filters import Frame
from atlas.pipeline.dedup import KINDS, REMOVED_BY_DEFAULT, components, ranks, replacements
from atlas.schema import ID, PAIR_A, PAIR_B, PAIR_KIND, PAIR_SIMILARITY, ROW, TEXT_LEN
from atlas.settings import DedupSettings

RULES = ("longest", "shortest", "first", "max:COL", "min:COL")


@dataclass
class Groups:
    """Duplicate groups over the records, in points order."""

    group: np.ndarray  # int64 (N,): group number, -1 when none
    kind: np.ndarray  # int8 (N,): each record's strictest link, index into KINDS
    pairs: list[np.ndarray]  # (2, P) pairs of each kind in KINDS[1:] order; empty for kinds not chosen
    chosen: tuple[str, ...]  # the kinds chosen
    pair_counts: dict[str, int]  # pairs per kind at these thresholds, chosen or not

    @property
    def count(self) -> int:
        return int(self.group.max()) + 1 if len(self.group) else 0

    def sizes(self) -> np.ndarray:
        return np.bincount(self.group[self.group >= 0], minlength=self.count)

    def group_kinds(self) -> list[str]:
        """Per group, its loosest link (a group held together by one near pair is near)."""
        loosest = np.zeros(self.count, np.int8)
        members = self.group >= 0
        np.maximum.at(loosest, self.group[members], self.kind[members])
        return [KINDS[code] for code in loosest]

    def summary(self) -> dict:
        """Group count, records in groups, and groups per kind."""
        kinds = self.group_kinds()
        return {"groups": self.count, "records": int((self.group >= 0).sum()), "kinds": list(self.chosen),
                "by_kind": {kind: kinds.count(kind) for kind in KINDS[1:]}, "pairs_by_kind": self.pair_counts}


@dataclass
class Removal:
    """Who replaces whom: each removed record is paired directly with the record kept in its place."""

    replaced_by: np.ndarray  # int64 (N,): the record kept in its place, itself when kept
    link: np.ndarray  # int8 (N,): index into KINDS of the pair to that record, 0 when kept

    @property
    def survivor(self) -> np.ndarray:
        return self.replaced_by == np.arange(len(self.replaced_by))

    @property
    def removable(self) -> np.ndarray:
        return ~self.survivor

    def kind(self, position: int) -> str | None:
        """The kind of the pair that links a record to the one kept in its place (None: kept)."""
        return KINDS[self.link[position]]


def groups(pairs: pa.Table, n: int, build: DedupSettings, *, near_threshold: float | None = None,
           semantic_threshold: float | None = None, kinds: str | Sequence[str] | None = None) -> Groups:
    """Connected components of the stored pairs of `kinds` (None: all but template) that pass
    the thresholds (None: the build's)."""
    chosen = parse_kinds(kinds)
    near = _threshold("near", near_threshold, build.near_threshold)
    semantic = _threshold("semantic", semantic_threshold, build.semantic_threshold)
    kind = pc.cast(pairs.column(PAIR_KIND), pa.string()).to_numpy(zero_copy_only=False)
    similarity = pairs.column(PAIR_SIMILARITY).to_numpy()
    edges = np.stack([pairs.column(PAIR_A).to_numpy(), pairs.column(PAIR_B).to_numpy()]).astype(np.int64)
    minimum = {"near": near, "semantic": semantic}
    keep = {name: (kind == name) & (similarity >= minimum.get(name, 0)) for name in KINDS[1:]}
    by_kind = [edges[:, keep[name]] if name in chosen else np.zeros((2, 0), np.int64) for name in KINDS[1:]]
    group, record_kind = components(by_kind, n)
    return Groups(group, record_kind, by_kind, chosen, {name: int(keep[name].sum()) for name in KINDS[1:]})


def parse_kinds(kinds: str | Sequence[str] | None) -> tuple[str, ...]:
    """The kinds named (a list, or one comma-separated string), in KINDS order; None: the default."""
    if kinds is None:
        return REMOVED_BY_DEFAULT
    items = [kinds] if isinstance(kinds, str) else list(kinds)
    names = [name.strip() for item in items for name in str(item).split(",") if name.strip()]
    unknown = [name for name in names if name not in KINDS[1:]]
    if unknown or not names:
        raise AtlasError(f"duplicate kinds are one or more of {', '.join(KINDS[1:])}, "
                         f"not {', '.join(map(repr, unknown)) or 'none'}")
    return tuple(k for k in KINDS[1:] if k in names)


def _threshold(name: str, value: float | None, built: float) -> float:
    if value is None:
        return built
    if not built <= value <= 1:
        raise AtlasError(f"{name} threshold {value} is outside {built}..1: the map stored only pairs at or above "
                         f"the build's {name} threshold ({built}), so thresholds can only be raised")
    return value


def removal(found: Groups, rule: str, frame: Frame, overrides: Mapping[int, str] | None = None) -> Removal:
    """Which record replaces which, taking records in the order of the survivor rule.

    Rules: `longest` / `shortest` text, `first` in input order, `max:COL` / `min:COL` of a
    metadata column (missing values last); ties go to the first in input order. `overrides`
    maps a group number to a record id that is taken first (kept whatever the rule).
    """
    row = frame.points.column(ROW).to_numpy()
    preferred = np.zeros(len(row), bool)
    if overrides:
        positions = _positions(frame, list(overrides.values()))
        wanted = np.array([int(g) for g in overrides], np.int64)
        wrong = found.group[positions] != wanted
        if wrong.any():
            g = int(wanted[wrong][0])
            raise AtlasError(f"record {list(overrides.values())[int(np.argmax(wrong))]!r} is not in duplicate "
                             f"group {g}; pick one of that group's members")
        preferred[positions] = True
    rank = ranks(~preferred, _rule_key(rule, frame), row)
    return Removal(*replacements(found.pairs, rank, found.chosen))


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
        ranked = pc.rank(values, sort_keys=[("", direction, "at_end")], tiebreaker="min")
        return ranked.to_numpy().astype(np.int64)
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
