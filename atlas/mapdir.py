"""The map directory: the one module that knows its file names and formats.

    my_map/
      manifest.json     format version, source + hash, columns, counts, models, stage params/timings
      records.parquet   every input row (original columns and types) + `id`, in input order
      points.parquet    id, row, x, y, topic_0..topic_{L-1}, outlier, text_len, empty, dup_*;
                        rows in spatial (Morton) order, so a viewport reads few row groups
      topics.parquet    topic_id, level, parent_id, label, description, label_source,
                        keyword_label, keywords, size, x, y; rewritten (atomically) every few
                        topics while the LLM names them, after the map is published
      labels_status.json  where naming stands: {"state": "waiting" | "naming" | "done" |
                        "stopped", "done": topics named, "total", "model", and
                        "finest_model" when another model names the finest level}; absent for a map
                        labelled by keywords only
      embeddings.npy    float16, one unit vector per record, row-aligned with points.parquet
      neighbors.npy     int32 (N, k): each point's nearest neighbours in embedding space
                        (as positions in points.parquet, itself first), with
      neighbor_similarity.npy   float16 (N, k) cosine similarities
      search.sqlite     SQLite FTS5 index of the texts, rowid = position in points.parquet
      ann.usearch       ANN index of the embeddings (usearch HNSW, float16; bfloat16 when SearchSettings.ann_dtype
                        asks), key = position in points.parquet; only in maps above SearchSettings.index_from records
      dup_pairs.parquet duplicate pairs: a, b (positions in points.parquet), kind, similarity
      edits.sqlite      the edit log (tags, removals, undo/redo; opened by atlas.edits), kept across rebuilds
      edits.sqlite.lock every use of the log holds it shared; a rebuild's swap holds it exclusively
      tiles/            rendered map tiles (a cache: safe to delete)

Column and table names inside these files are in atlas.schema.

A build writes into a hidden sibling (`.my_map.partial`) and renames it into place
only when every stage succeeded, so a failed build never leaves a half-written map.
Each build has its own `build_id` in the manifest: a reader that loaded one build refuses to
mix it with files of the next (`check_build`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas.errors import AtlasError, MapChanged
from atlas.schema import SEARCH_TABLE, SEARCH_TEXT

FORMAT_VERSION = 1
POINTS_ROW_GROUP = 32_768
SWAP_RETRIES = 100  # times 10 ms: an edit waits this long for a swapped map directory to reappear


class MapDir:
    """Paths and read/write of every artifact in one map directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    manifest_path = property(lambda self: self.path / "manifest.json")
    records_path = property(lambda self: self.path / "records.parquet")
    points_path = property(lambda self: self.path / "points.parquet")
    topics_path = property(lambda self: self.path / "topics.parquet")
    embeddings_path = property(lambda self: self.path / "embeddings.npy")
    neighbors_path = property(lambda self: self.path / "neighbors.npy")
    similarity_path = property(lambda self: self.path / "neighbor_similarity.npy")
    search_path = property(lambda self: self.path / "search.sqlite")
    ann_path = property(lambda self: self.path / "ann.usearch")
    dup_pairs_path = property(lambda self: self.path / "dup_pairs.parquet")
    edits_path = property(lambda self: self.path / "edits.sqlite")
    tiles_path = property(lambda self: self.path / "tiles")
    chunks_path = property(lambda self: self.path / "embedding_chunks")
    labels_status_path = property(lambda self: self.path / "labels_status.json")

    def __repr__(self) -> str:
        return f"MapDir({str(self.path)!r})"

    def is_map(self) -> bool:
        return self.manifest_path.is_file()

    def manifest(self) -> dict:
        if not self.is_map():
            raise AtlasError(f"{self.path} is not an Atlas map (no manifest.json); build one with `atlas build`")
        manifest = json.loads(self.manifest_path.read_text())
        if manifest.get("format_version") != FORMAT_VERSION:
            raise AtlasError(
                f"{self.path} was written in map format {manifest.get('format_version')}; "
                f"this Atlas reads format {FORMAT_VERSION}: rebuild it with `atlas build --force`"
            )
        return manifest

    def build_id(self) -> str:
        """Names this build of the map: the id each build writes in its manifest (a hash of the
        manifest for maps built before it had one). A rebuild changes it; a relabel does not."""
        raw = self.manifest_path.read_bytes()
        return json.loads(raw).get("build_id") or hashlib.blake2b(raw, digest_size=8).hexdigest()

    def check_build(self, build_id: str) -> None:
        """Raise MapChanged unless the map on disk is still the build `build_id`."""
        try:
            current = self.build_id()
        except FileNotFoundError:  # between the two renames of a swap
            current = None
        if current != build_id:
            raise MapChanged(f"{self.path} was rebuilt after it was opened here; restart `atlas serve` "
                             "(or run the command again) to work on the new map")

    def write_manifest(self, manifest: dict) -> None:
        _write_json(self.manifest_path, {"format_version": FORMAT_VERSION, **manifest})

    def write_labels_status(self, status: dict) -> None:
        _write_json(self.labels_status_path, status)

    def labels_status(self) -> dict | None:
        """Where LLM naming stands, or None when nothing names this map's topics."""
        try:
            return json.loads(self.labels_status_path.read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):  # NotADirectory: a file, no map
            return None

    def write_records(self, table: pa.Table) -> None:
        pq.write_table(table, self.records_path, compression="zstd")

    def records(self, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.records_path, columns=columns)

    def write_points(self, table: pa.Table) -> None:
        pq.write_table(table, self.points_path, row_group_size=POINTS_ROW_GROUP, compression="zstd")

    def points(self, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.points_path, columns=columns)

    def write_topics(self, table: pa.Table) -> None:
        """Written aside and renamed, so a server or a relabel never reads half a file."""
        tmp = self.topics_path.with_name(f".topics.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        tmp.replace(self.topics_path)

    def topics(self) -> pa.Table:
        return pq.read_table(self.topics_path)

    def write_embeddings(self, vectors: np.ndarray) -> None:
        np.save(self.embeddings_path, vectors.astype(np.float16, copy=False))

    def embeddings(self) -> np.ndarray:
        """float16 (N, dim), memory-mapped, in points.parquet order."""
        return np.load(self.embeddings_path, mmap_mode="r")

    def write_neighbors(self, indices: np.ndarray, similarity: np.ndarray) -> None:
        np.save(self.neighbors_path, indices.astype(np.int32, copy=False))
        np.save(self.similarity_path, similarity.astype(np.float16, copy=False))

    def neighbors(self) -> tuple[np.ndarray, np.ndarray]:
        """(indices, similarity), memory-mapped, in points.parquet order."""
        return np.load(self.neighbors_path, mmap_mode="r"), np.load(self.similarity_path, mmap_mode="r")

    def write_dup_pairs(self, table: pa.Table) -> None:
        pq.write_table(table, self.dup_pairs_path, compression="zstd")

    def dup_pairs(self) -> pa.Table:
        return pq.read_table(self.dup_pairs_path)

    def write_search_index(self, texts: Iterable[str]) -> None:
        """Full-text index (SQLite FTS5, contentless): rowid i is the i-th row of points.parquet."""
        self.search_path.unlink(missing_ok=True)
        with closing(sqlite3.connect(self.search_path)) as db:
            db.execute(f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5({SEARCH_TEXT}, content='', "
                       "tokenize='unicode61 remove_diacritics 2')")
            db.executemany(f"INSERT INTO {SEARCH_TABLE}(rowid, {SEARCH_TEXT}) VALUES (?, ?)", enumerate(texts))
            db.commit()

    def search_index(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.search_path}?mode=ro", uri=True, check_same_thread=False)

    def write_ann_index(self, index) -> None:
        """Save a usearch Index (atlas.pipeline.ann)."""
        index.save(str(self.ann_path))

    def ann_index(self, expansion_search: int):
        """The usearch Index, memory-mapped, searching with that beam; None when the map has none."""
        if not self.ann_path.is_file():
            return None
        from usearch.index import Index

        index = Index.restore(str(self.ann_path), view=True)
        index.expansion_search = expansion_search
        return index

    def embedding_chunks(self, key: str) -> EmbeddingChunks:
        return EmbeddingChunks(self.chunks_path, key)


class EmbeddingChunks:
    """Embeddings saved chunk by chunk during a build, so an interrupted build resumes.

    `key` identifies the source and embedder: chunks saved under another key are dropped.
    """

    def __init__(self, path: Path, key: str):
        self.path = path
        key_file = path / "key"
        if path.exists() and (not key_file.exists() or key_file.read_text() != key):
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(key)

    def _file(self, index: int) -> Path:
        return self.path / f"{index:06d}.npy"

    def done(self, index: int) -> bool:
        return self._file(index).exists()

    def save(self, index: int, vectors: np.ndarray, truncated: int) -> None:
        """Save one chunk and how many of its texts were cut to the model's window."""
        (self.path / f"{index:06d}.truncated").write_text(str(truncated))
        tmp = self.path / f"{index:06d}.tmp.npy"
        np.save(tmp, vectors.astype(np.float16, copy=False))
        tmp.replace(self._file(index))

    def load(self, index: int) -> tuple[np.ndarray, int]:
        return np.load(self._file(index)), int((self.path / f"{index:06d}.truncated").read_text())


def _write_json(path: Path, value: dict) -> None:
    """Written aside and renamed, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2))
    tmp.replace(path)


def file_hash(path: Path) -> str:
    """blake2b of the file's bytes: identifies the source a map was built from."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def default_out(source: Path) -> Path:
    """Where a map of `source` goes when no directory is named: `SOURCE-STEM_map`."""
    return Path(f"{Path(source).stem}_map")


def staging_for(out: Path) -> MapDir:
    """The hidden sibling a build writes into before it is renamed to `out`."""
    return MapDir(out.parent / f".{out.name}.partial")


def check_target(out: Path, source_hash: str, force: bool) -> None:
    """Refuse to overwrite a directory that is not a map of this same source."""
    if force or not out.exists():
        return
    if not out.is_dir():
        raise AtlasError(f"{out} exists and is not a directory; choose another --out")
    target = MapDir(out)
    if not target.is_map():
        if any(out.iterdir()):
            raise AtlasError(
                f"{out} is a non-empty directory that is not an Atlas map; "
                "choose another --out, or pass --force to replace it"
            )
        return
    previous = target.manifest().get("source", {})
    if previous.get("hash") != source_hash:
        raise AtlasError(
            f"{out} holds a map of another source ({previous.get('path')}); "
            "choose another --out, or pass --force to replace it"
        )


def publish(staging: MapDir, out: Path) -> MapDir:
    """Move a finished build into place, replacing any previous map at `out`. The previous
    map's edit log is copied into the new one and the directories swapped under the log's
    exclusive lock, so an edit is either in the copy or waits and lands in the new log."""
    shutil.rmtree(staging.chunks_path, ignore_errors=True)
    previous = MapDir(out)
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    with edit_log_lock(previous.edits_path, exclusive=True) if out.is_dir() else nullcontext():
        _carry_edits(previous, staging)
        if out.exists():
            out.rename(old)
        staging.path.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return MapDir(out)


@contextmanager
def edit_log_lock(log_path: Path, *, exclusive: bool = False) -> Iterator[None]:
    """Hold the lock file beside an edit log: shared around every connection to the log,
    exclusive while `publish` copies the log and swaps the directories. A lock won on a file
    that a swap has since replaced is taken again on the new one, so no connection is open
    across a swap (SQLite must not see its files renamed under it)."""
    import fcntl

    lock = log_path.with_name(log_path.name + ".lock")
    for attempt in itertools.count():
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # the map directory is between the two renames of a swap
            if attempt >= SWAP_RETRIES:
                raise
            time.sleep(0.01)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if _same_file(fd, lock):
                yield
                return
        finally:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)


def _carry_edits(previous: MapDir, new: MapDir) -> None:
    """Copy the previous map's edit log into a rebuild; edits apply by record id, so they carry over."""
    if not previous.edits_path.exists():
        return
    with closing(sqlite3.connect(previous.edits_path)) as source, closing(sqlite3.connect(new.edits_path)) as target:
        source.backup(target)
