"""One map opened for curation: every curation action is one call here, so the CLI and the
server's routes stay thin.

An edit is chosen by a predicate, stored with it in the edit log and re-evaluated by `replay`
on another version of the dataset:

    {"select": [steps]}                      a selection (atlas.selection)
    {"duplicates": {"keep": RULE, "near_threshold": T, "semantic_threshold": T, "prefer": [ids],
                    "kinds": [exact, near, semantic, template]}}     (kinds: default all but template)
    {"quota": {"level": L, "seed": S, "cap": N | "cap_pct": P | "target": T}}
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Sequence
from contextlib import closing
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas import duplicates
from atlas.balance import Quota, quota
from atlas.edits import EDIT_ACTIONS, EditLog, EditState, Entry, stacks
from atlas.errors import AtlasError
from atlas.export import export, export_table, parse_extras, tag_lists
from atlas.filters import Frame, Search
from atlas.mapdir import MapDir
from atlas.schema import DUP_SURVIVOR, ID, LABEL, LEVEL, TOPIC_ID, check_level, topic_column
from atlas.selection import map_bound, resolve
from atlas.settings import DedupSettings

Groups, Removal = duplicates.Groups, duplicates.Removal  # the face names these types through the facade
__all__ = ["RESTORE_ALL", "SEMANTIC_MATCHES", "Curation", "Entry", "Groups", "Removal", "parse_extras", "removal",
           "select"]

if TYPE_CHECKING:
    from atlas.query import MapData

SEMANTIC_MATCHES = 1000  # `semantic ~ "words"` matches the records nearest the words


class Curation:
    """The filter frame, the edit log and the duplicate pairs of one map, in points order.

    `search` and `semantic` (query -> positions) default to the map's own indexes, and
    `points` and `records` to the map's tables; a server passes the ones it already has loaded.
    Every write, and every read of positional data from disk, checks that the map was not
    rebuilt since (MapChanged): positions of one build name other records in the next.
    """

    def __init__(self, path: str | os.PathLike | MapDir, *, search: Search | None = None,
                 semantic: Search | None = None, points: pa.Table | None = None,
                 records: pa.Table | None = None):
        self.mapdir = path if isinstance(path, MapDir) else MapDir(path)
        self.manifest = self.mapdir.manifest()
        self.build_id = self.mapdir.build_id()
        self.log = EditLog(self.mapdir.edits_path)
        self.topics = self.mapdir.topics()
        self._points, self._records = points, records
        self._search, self._semantic_search = search, semantic

    @cached_property
    def ids(self) -> pa.Array:
        """Record ids in points order."""
        points = self._points if self._points is not None else self._checked(self.mapdir.points([ID]))
        return points.column(ID).combine_chunks()

    @cached_property
    def frame(self) -> Frame:
        """What filters and selections read, loaded on first use (an undo needs none of it)."""
        points = self._points if self._points is not None else self.mapdir.points()
        records = self._records if self._records is not None else self.mapdir.records()
        self.check()  # the tables read were this build's
        return Frame(points, records, self.topics.column(LEVEL).to_numpy(), state=self.state,
                     search=self._search or self._keyword, semantic=self._semantic_search or self._semantic)

    @cached_property
    def embeddings(self) -> np.ndarray:
        """float16 (N, dim), memory-mapped: this build's even if a rebuild replaces the file later."""
        return self._checked(self.mapdir.embeddings())

    def __len__(self) -> int:
        return len(self.ids)

    def state(self) -> EditState:
        return self.log.state(self.ids)

    def check(self) -> None:
        """Raise MapChanged when the map on disk is no longer the build loaded here."""
        self.mapdir.check_build(self.build_id)

    def _checked(self, value):
        """`value`, read from the map directory, after checking it was this build's."""
        self.check()
        return value

    def kept(self, where: str | None = None, *, include_removed: bool = False) -> np.ndarray:
        """Bool (N,): the records an export writes: not removed (unless asked) and matching `where`."""
        mask = self.frame.mask(where)
        return mask if include_removed else mask & ~self.state().removed

    def select(self, steps: list[dict], where: str | None = None) -> np.ndarray:
        """Bool (N,): the records a selection (atlas.selection steps) chooses, narrowed by `where`."""
        selected = resolve(steps, self.frame)
        return selected & self.frame.mask(where) if where else selected

    def history(self) -> tuple[list[Entry], list[Entry], list[Entry]]:
        """The whole edit log (oldest first), the edits in force, and those that can be redone."""
        entries = self.log.entries()
        return entries, *stacks(entries)

    def resolve(self, predicate: dict) -> np.ndarray:
        """Bool (N,): the records a predicate chooses on this map."""
        kind, args = _predicate(predicate)
        if kind == "select":
            return resolve(args, self.frame)
        if kind == "duplicates":
            return self.duplicate_removals(**_arguments(self.duplicate_removals, args, kind))
        return self.quota(**_arguments(self.quota, args, kind)).remove

    def edit(self, action: str, predicate: dict, *, tag: str | None = None, reason: str = "") -> Entry:
        """Apply `action` (tag, untag, remove, restore) to the records `predicate` chooses."""
        self.check()
        return self.log.append(action, self.ids.filter(self.resolve(predicate)), predicate=predicate,
                               tag=tag, reason=reason)

    @classmethod
    def of(cls, data: MapData) -> Curation:
        """The Curation of a loaded map (atlas.query.MapData), sharing its tables, keyword index
        and embedder instead of loading them again."""
        return cls(data.mapdir, search=data.keyword_positions,
                   semantic=lambda query: data.semantic_positions(query, SEMANTIC_MATCHES)[0],
                   points=data.points, records=data.records)

    def undo(self) -> Entry:
        """Step back over the latest edit in force; AtlasError when there is none."""
        return self._step("undo")

    def redo(self) -> Entry:
        """Re-apply the latest undone edit; AtlasError when there is none."""
        return self._step("redo")

    def _step(self, action: str) -> Entry:
        self.check()
        entry = self.log.undo() if action == "undo" else self.log.redo()
        if entry is None:
            raise AtlasError(f"nothing to {action}")
        return entry

    @cached_property
    def _pairs(self) -> pa.Table:
        if not self.mapdir.dup_pairs_path.exists():
            raise AtlasError(f"{self.mapdir.path} has no duplicate pairs (built by an older Atlas); "
                             "rebuild it with `atlas build`")
        return self._checked(self.mapdir.dup_pairs())

    def duplicate_groups(self, near_threshold: float | None = None, semantic_threshold: float | None = None,
                         kinds: str | Sequence[str] | None = None) -> duplicates.Groups:
        """Groups of the pairs of `kinds` (None: all but template) at the thresholds."""
        build = DedupSettings(**{k: v for k, v in self.manifest["settings"]["dedup"].items()
                                 if k in DedupSettings.__dataclass_fields__})
        return duplicates.groups(self._pairs, len(self), build, near_threshold=near_threshold,
                                 semantic_threshold=semantic_threshold, kinds=kinds)

    def duplicate_removal(self, keep: str = "longest", near_threshold: float | None = None,
                          semantic_threshold: float | None = None, prefer: Sequence[str] = (),
                          kinds: str | Sequence[str] | None = None) -> tuple[duplicates.Groups, duplicates.Removal]:
        """The groups, and which record replaces which: records are taken in the order of the
        rule `keep`, each kept one replaces the records it is directly paired with (never
        through a chain); `prefer` names records taken first, whatever the rule."""
        found = self.duplicate_groups(near_threshold, semantic_threshold, kinds)
        overrides = duplicates.overrides_for(found, self.frame, list(prefer))
        return found, duplicates.removal(found, keep, self.frame, overrides)

    def duplicate_removals(self, keep: str = "longest", near_threshold: float | None = None,
                           semantic_threshold: float | None = None, prefer: Sequence[str] = (),
                           kinds: str | Sequence[str] | None = None) -> np.ndarray:
        """Bool (N,): the records "remove duplicates" takes (see `duplicate_removal`)."""
        return self.duplicate_removal(keep, near_threshold, semantic_threshold, prefer, kinds)[1].removable

    def quota(self, level: int = 0, seed: int = 0, cap: int | None = None, cap_pct: float | None = None,
              target: int | None = None) -> Quota:
        """Preview of a quota over the kept records at `level` (atlas.balance)."""
        points = self.frame.points
        return quota(self.topic(level), ~self.state().removed,
                     points.column(DUP_SURVIVOR).to_numpy(zero_copy_only=False), self.embeddings,
                     level=level, seed=seed, cap=cap, cap_pct=cap_pct, target=target)

    def level(self, level: int) -> int:
        """`level` when this map has it; else an AtlasError naming the levels it has."""
        return check_level(level, self.manifest["levels"])

    def topic(self, level: int) -> np.ndarray:
        """Each record's topic id at `level`, in points order."""
        return self.frame.points.column(topic_column(self.level(level))).to_numpy()

    def quota_preview(self, **args) -> list[dict]:
        """Per topic, the kept records and shares before and after a quota (Curation.quota's arguments)."""
        return self.quota(**_arguments(self.quota, args, "quota")).preview(self.labels())

    def labels(self) -> dict[int, str]:
        return dict(zip(self.topics.column(TOPIC_ID).to_pylist(), self.topics.column(LABEL).to_pylist()))

    def export(self, out: str | os.PathLike, *, extras: tuple[str, ...] = (), include_removed: bool = False,
               where: str | None = None) -> int:
        """Write the kept records to the parquet file `out` (atlas.export); returns the row count."""
        return export(self, out, extras=extras, include_removed=include_removed, where=where)

    def tag_lists(self, positions: np.ndarray) -> pa.ListArray:
        """Each record's tags (list<string>, sorted by name) for the records at `positions`."""
        return tag_lists(self.state().tags, positions)

    def export_table(self, *, extras: tuple[str, ...] = (), include_removed: bool = False,
                     where: str | None = None) -> pa.Table:
        """The table `export` writes (atlas.export), in memory."""
        return export_table(self, extras=extras, include_removed=include_removed, where=where)

    def report_html(self) -> str:
        """The before/after curation report as one self-contained HTML page (atlas.curation_report)."""
        from atlas.curation_report import html

        return html(self)

    def report(self, out: str | os.PathLike) -> dict:
        """Write the report to the HTML file `out` (atomically); returns its summary data."""
        from atlas.curation_report import report

        return report(self, out)

    def export_edits(self) -> list[dict]:
        """The edits in force as replayable JSON: a selection drawn on this map (a lasso, a box,
        a topic) is replaced by its record ids, and kept under "drawn" for the record."""
        out = []
        for entry, ids in zip(active := self.log.active(), self.log.ids([e.seq for e in active])):
            item = {"action": entry.action, "tag": entry.tag, "reason": entry.reason, "predicate": entry.predicate}
            kind, args = _predicate(entry.predicate)
            if kind == "select" and map_bound(args):
                item |= {"predicate": {"select": [{"op": "replace", "ids": ids.to_pylist()}]},
                         "drawn": entry.predicate}
            out.append(item)
        return out

    def replay(self, items: list[dict]) -> list[dict]:
        """Append exported edits, each re-evaluated on this map. Per edit: its new entry's seq,
        count, and the ids it names that this map does not have (reported, not fatal)."""
        if not isinstance(items, list):
            raise AtlasError("an edits file is a JSON list, as `atlas edits export` writes")
        report = []
        for number, item in enumerate(items, 1):
            if not isinstance(item, dict) or item.get("action") not in EDIT_ACTIONS:
                raise AtlasError(f"edit {number}: needs an action, one of {', '.join(EDIT_ACTIONS)}")
            entry = self.edit(item["action"], item.get("predicate"), tag=item.get("tag"),
                              reason=item.get("reason", ""))
            report.append({"seq": entry.seq, "action": entry.action, "count": entry.count,
                           "missing": self._missing(item["predicate"])})
        return report

    def _missing(self, predicate: dict) -> list[str]:
        kind, args = _predicate(predicate)
        named = [i for step in args if "ids" in step for i in step["ids"]] if kind == "select" else []
        named += list(args.get("prefer", ())) if kind == "duplicates" else []
        if not named:
            return []
        named = pa.array(named, pa.string())
        return named.filter(pc.invert(pc.is_in(named, value_set=self.ids))).to_pylist()

    def _keyword(self, query: str) -> np.ndarray:
        from atlas.query import keyword_matches

        with closing(self.mapdir.search_index()) as db:
            return self._checked(keyword_matches(db, query))

    def _semantic(self, query: str) -> np.ndarray:
        return self._query_data.semantic_positions(query, SEMANTIC_MATCHES)[0]

    @cached_property
    def _query_data(self):
        from atlas.query import MapData

        return self._checked(MapData(self.mapdir))


RESTORE_ALL = {"select": [{"op": "replace", "where": "removed = true"}]}


def select(topics: Sequence[int] = (), where: str | None = None) -> dict:
    """The predicate of records chosen by topic ids (any level) or by a filter: exactly one kind."""
    if bool(topics) == bool(where):
        raise AtlasError("choose the records with topic (ids at any level) or where (a filter): one of the two")
    if where:
        return {"select": [{"op": "replace", "where": where}]}
    return {"select": [{"op": "add", "topic": int(t)} for t in topics]}


def removal(topics: Sequence[int] = (), where: str | None = None, duplicates: dict | None = None,
            quota: dict | None = None) -> dict:
    """The predicate of a removal: a selection (topics or where), duplicates (the arguments of
    Curation.duplicate_removals) or a quota (those of Curation.quota): exactly one."""
    if sum(map(bool, ((topics or where), duplicates is not None, quota is not None))) != 1:
        raise AtlasError("remove needs one of topic / where, duplicates or quota")
    if duplicates is not None:
        return {"duplicates": duplicates}
    if quota is not None:
        return {"quota": quota}
    return select(topics, where)


def _predicate(predicate) -> tuple[str, dict | list]:
    """(kind, arguments) of a stored predicate; AtlasError when it is not one."""
    if isinstance(predicate, dict) and len(predicate) == 1:
        (kind, args), = predicate.items()
        if kind == "select" or (kind in ("duplicates", "quota") and isinstance(args, dict)):
            return kind, args
    raise AtlasError('a predicate is {"select": [steps]}, {"duplicates": {"keep": RULE, ...}} or '
                     f'{{"quota": {{"level": L, "cap": N, ...}}}}, not {predicate!r}')


def _arguments(method, args: dict, kind: str) -> dict:
    """`args` checked against `method`'s signature: known names, values of the annotated types."""
    from pydantic import TypeAdapter, ValidationError

    parameters = inspect.signature(method).parameters
    unknown = sorted(set(args) - set(parameters))
    if unknown:
        raise AtlasError(f"{kind}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(parameters)}")
    types = typing.get_type_hints(method)
    for name, value in args.items():
        try:
            TypeAdapter(types[name]).validate_python(value, strict=True)
        except ValidationError:
            raise AtlasError(f"{kind}: {name} is {parameters[name].annotation}, not {value!r}") from None
    return args
