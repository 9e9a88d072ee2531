"""Read queries over a map directory: viewport points, one record, keyword and semantic search."""

from __future__ import annotations

import re
import sqlite3
import threading
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.mapdir import MapDir
from atlas.records import point_texts
from atlas.schema import (
    DUP_GROUP,
    DUP_KIND,
    DUP_SURVIVOR,
    ID,
    LABEL,
    LABEL_COLUMNS,
    LEVEL,
    MORTON,
    OUTLIER,
    ROW,
    SEARCH_TABLE,
    X,
    Y,
    topic_column,
)
from atlas.settings import SearchSettings
from atlas.vectors import topic_centres

SNIPPET = 200
KEYWORD_CANDIDATES = 20_000
EXACT_SEARCH_LIMIT = SearchSettings.index_from  # a map without an ANN index above this probes topics
PROBE_TOPICS = 24
SEARCH_MODES = ("keyword", "semantic")


class MapData:
    """Everything the server reads from a map directory, loaded once, in points order."""

    def __init__(self, mapdir: MapDir):
        self.mapdir = mapdir
        self.manifest = mapdir.manifest()
        points = mapdir.points()
        self.points = points
        self.ids = points.column(ID).combine_chunks()
        self.x = points.column(X).to_numpy()
        self.y = points.column(Y).to_numpy()
        self.levels = [points.column(topic_column(lvl)).to_numpy() for lvl in range(self.manifest["levels"])]
        self.rows = points.column(ROW).to_numpy()
        self.morton = points.column(MORTON).to_numpy()
        self.records = mapdir.records()
        self.text = point_texts(self.records, self.manifest["columns"]["text"], self.rows)
        self.topics = mapdir.topics().to_pylist()
        self.build_id = mapdir.build_id()
        self.labels_version = self._topics_stamp()
        for topic, box in zip(self.topics, self._topic_boxes()):
            topic["bbox"] = box
        self._labels_lock = threading.Lock()
        self.neighbor_index, self.neighbor_similarity = mapdir.neighbors()
        # Memory-mapped now, so a rebuild swapping the files later leaves this build's arrays here.
        self.embeddings = mapdir.embeddings()
        self._search = mapdir.search_index()
        search = self.manifest.get("settings", {}).get("search", {})
        self.ann = mapdir.ann_index(search.get("expansion_search", SearchSettings.expansion_search))
        self._search_lock = threading.Lock()
        self._embed_lock = threading.Lock()
        self._ann_lock = threading.Lock()

    def _topics_stamp(self) -> str:
        """Changes whenever topics.parquet is replaced (it is always written aside and renamed)."""
        stat = self.mapdir.topics_path.stat()
        return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}"

    def refresh_labels(self) -> dict:
        """Take up the names that LLM naming wrote since; returns where naming stands
        (labels_status.json, or state "none" when nothing names this map) and the labels' version.
        A rebuilt map is not taken up (MapChanged: the server must restart for it)."""
        with self._labels_lock:
            stamp = self._topics_stamp()
            if stamp != self.labels_version:
                self.mapdir.check_build(self.build_id)
                table = self.mapdir.topics()
                names = zip(*(table.column(c).to_pylist() for c in LABEL_COLUMNS))
                for topic, values in zip(self.topics, names):
                    topic.update(zip(LABEL_COLUMNS, values))
                self.labels_version = stamp
        return {"state": "none", **(self.mapdir.labels_status() or {}), "version": self.labels_version}

    def _topic_boxes(self) -> list[list[float]]:
        """Per topic: (xmin, ymin, xmax, ymax) of its members that are not outliers."""
        n_topics = len(self.topics)
        lo = np.full((n_topics, 2), np.inf)
        hi = np.full((n_topics, 2), -np.inf)
        core = ~self.points.column(OUTLIER).to_numpy(zero_copy_only=False)
        xy = np.stack([self.x, self.y], axis=1)
        for members in (core, np.ones_like(core)):  # a topic made only of outliers uses them all
            for level in self.levels:
                missing = ~np.isfinite(lo[level[members], 0])
                idx = level[members][missing]
                np.minimum.at(lo, idx, xy[members][missing])
                np.maximum.at(hi, idx, xy[members][missing])
        return np.concatenate([lo, hi], axis=1).round(5).tolist()

    def __len__(self) -> int:
        return len(self.x)

    def position(self, record_id: str) -> int:
        """Row in points order of a record id; LookupError when unknown."""
        found = pc.index(self.ids, pa.scalar(record_id, pa.string())).as_py()
        if found < 0:
            raise LookupError(record_id)
        return found

    def snippet(self, i: int) -> str:
        text = self.text[i].as_py()
        return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"

    def point(self, i: int) -> dict:
        return {"id": self.ids[i].as_py(), "x": float(self.x[i]), "y": float(self.y[i]),
                "topics": [int(level[i]) for level in self.levels], "snippet": self.snippet(i)}

    def in_box(self, x0: float, y0: float, x1: float, y1: float, limit: int,
               sample: bool = True) -> tuple[int, list[dict]]:
        """How many points lie in the box, and up to `limit` of them: an even spread when
        `sample`, else none at all when there are more than `limit`."""
        inside = np.flatnonzero((self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1))
        total = len(inside)
        if total > limit:
            inside = inside[np.linspace(0, total - 1, limit).astype(np.int64)] if sample else inside[:0]
        return total, [self.point(int(i)) for i in inside]

    def record(self, record_id: str, k: int = 10) -> dict:
        i = self.position(record_id)
        row = self.records.slice(int(self.rows[i]), 1).to_pylist()[0]
        neighbors = [
            {**self.point(int(j)), "similarity": round(float(s), 4)}
            for j, s in zip(self.neighbor_index[i], self.neighbor_similarity[i])
            if j != i and j >= 0
        ][:k]
        dup_group = self.points.column(DUP_GROUP)[i].as_py()
        return {
            **self.point(i),
            "text": self.text[i].as_py(),
            "columns": {key: _jsonable(v) for key, v in row.items()},
            "topic_path": [self.topic_summary(int(level[i])) for level in self.levels],
            "outlier": bool(self.points.column(OUTLIER)[i].as_py()),
            "duplicate": None if dup_group is None else {
                "group": dup_group, "kind": self.points.column(DUP_KIND)[i].as_py(),
                "survivor": bool(self.points.column(DUP_SURVIVOR)[i].as_py())},
            "neighbors": neighbors,
        }

    def topic_summary(self, topic_id: int) -> dict:
        t = self.topics[topic_id]
        return {"topic_id": topic_id, "level": t[LEVEL], "label": t[LABEL]}

    def search(self, query: str, mode: str, limit: int) -> list[dict]:
        """The records a `keyword` or `semantic` search finds, best first."""
        if mode not in SEARCH_MODES:
            raise AtlasError(f"search mode is {' or '.join(SEARCH_MODES)}, not {mode!r}")
        return self.keyword_search(query, limit) if mode == "keyword" else self.semantic_search(query, limit)

    def keyword_search(self, query: str, limit: int) -> list[dict]:
        """Full-text search (SQLite FTS5, ranked by BM25): every word must match; the last may be a prefix."""
        match = fts_match(query)
        if match is None:
            return []
        with self._search_lock:  # BM25 ranks at most KEYWORD_CANDIDATES matches: common words stay fast
            hits = self._search.execute(
                f"SELECT rowid, rank FROM (SELECT rowid, rank FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ? "
                "LIMIT ?) ORDER BY rank LIMIT ?", (match, KEYWORD_CANDIDATES, limit)
            ).fetchall()
        return [{**self.point(i), "score": round(-rank, 3)} for i, rank in hits]

    def keyword_positions(self, query: str) -> np.ndarray:
        """Positions of every record matching the keyword query (unranked)."""
        with self._search_lock:
            return keyword_matches(self._search, query)

    def semantic_search(self, query: str, limit: int) -> list[dict]:
        """The records nearest the query in embedding space (see semantic_positions)."""
        positions, scores = self.semantic_positions(query, limit)
        return [{**self.point(int(i)), "score": round(float(s), 4)} for i, s in zip(positions, scores)]

    def semantic_positions(self, query: str, limit: int, probe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions and scores of the records nearest the query, embedded by the map's own embedder.

        None: the map's ANN index when it has one (maps above SearchSettings.index_from records),
        else every vector up to EXACT_SEARCH_LIMIT records, else PROBE_TOPICS (maps built before
        the index). `probe` 0 scores every vector; above 0, the fine topics act as an inverted
        file: the query is scored against each topic's mean vector and only the members of the
        `probe` best topics are scored exactly.
        """
        with self._embed_lock:
            vector = self.embedder.encode([query])[0]
        embeddings = self.embeddings
        if probe is None and self.ann is not None:
            with self._ann_lock:
                candidates = np.sort(self.ann.search(vector, limit, threads=1).keys.astype(np.int64))
        elif probe is None and len(embeddings) <= EXACT_SEARCH_LIMIT or probe == 0:
            candidates = np.arange(len(embeddings))
        else:
            members, starts, centroids = self._topic_lists
            nearest = np.argsort(-(centroids @ vector))[:probe or PROBE_TOPICS]
            candidates = np.sort(np.concatenate([members[starts[t]:starts[t + 1]] for t in nearest]))
        scores = np.asarray(embeddings[candidates], np.float32) @ vector
        best = np.argsort(-scores, kind="stable")[:limit]
        return candidates[best], scores[best]

    @cached_property
    def _topic_lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points grouped by fine topic (members, start offsets) and each topic's unit mean vector."""
        fine = self.levels[-1] - self.levels[-1].min()
        members = np.argsort(fine, kind="stable")
        starts = np.r_[0, np.cumsum(np.bincount(fine))]
        return members, starts, topic_centres(self.embeddings, fine, len(starts) - 1)

    @cached_property
    def embedder(self):
        from atlas.pipeline.embed import load_embedder
        from atlas.settings import EmbedSettings, cache_dir

        spec = self.manifest["embedder"].get("spec")
        if spec is None:
            raise AtlasError("this map was built from precomputed vectors; semantic search needs an embedder")
        return load_embedder(spec, EmbedSettings(), cache_dir())


def fts_match(query: str) -> str | None:
    """The FTS5 expression of a keyword query: every word must match, the last may be a
    prefix; each word is quoted, so the query's text is never FTS syntax. None: no words."""
    words = re.findall(r"\w+", query)
    if not words:
        return None
    return " ".join(f'"{w}"' for w in words[:-1]) + f' "{words[-1]}"*'


def keyword_matches(db: sqlite3.Connection, query: str) -> np.ndarray:
    """Positions (points order) of every record the keyword query matches in search.sqlite."""
    match = fts_match(query)
    if match is None:
        return np.zeros(0, np.int64)
    rows = db.execute(f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ?", (match,)).fetchall()
    return np.array([row for row, in rows], np.int64)


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)
