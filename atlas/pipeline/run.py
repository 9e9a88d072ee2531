"""Run the stages in order and write the map directory.

The runner alone does I/O and timing; stages stay pure. Embeddings are saved chunk by chunk,
so an interrupted build resumes, and are reused when a rebuild keeps source and embedder.
The per-block work (embedding, dedup's per-record features, UMAP's placement of the records
beyond its sample) and the label model run on an Engine: this process, or a Ray cluster; the
rest runs here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import atlas
from atlas.errors import AtlasError
from atlas.mapdir import EmbeddingChunks, MapDir, check_target, file_hash, publish, staging_for
from atlas.pipeline import embed as embedding
from atlas.pipeline import estimate
from atlas.pipeline.ann import build_index
from atlas.pipeline.cluster import Hierarchy, cluster, label_positions
from atlas.pipeline.dedup import KINDS, Duplicates, block_features, duplicates_from
from atlas.pipeline.distinct import Distinct, distinct_texts
from atlas.pipeline.encode import EncodeTexts
from atlas.pipeline.engine import Engine, LocalEngine, Task, concat
from atlas.pipeline.gpu import device_label, gpu_name, layout_backend
from atlas.pipeline.ingest import MAX_TEXT_CHARS, Dataset, read_dataset
from atlas.pipeline.keywords import topic_keywords
from atlas.pipeline.neighbors import nearest_neighbors
from atlas.pipeline.project import project
from atlas.pipeline.relabel import initial_labels, label_model, naming_plan, naming_status, relabel, with_labels
from atlas.progress import Progress
from atlas.records import iter_texts
from atlas.schema import (
    DUP_GROUP,
    DUP_KIND,
    DUP_SURVIVOR,
    EMPTY,
    ID,
    KEYWORD_LABEL,
    KEYWORDS,
    LEVEL,
    MORTON,
    OUTLIER,
    PARENT_ID,
    ROW,
    SIZE,
    TEXT_LEN,
    TOPIC_ID,
    X,
    Y,
    topic_column,
)
from atlas.settings import BuildSettings, cache_dir
from atlas.spatial import extent, morton_codes, world

Log = Callable[[str], None]
SKIPPED_SHOWN = 20  # bad line numbers printed by a build
SKIPPED_KEPT = 1000  # and kept in the manifest
# Text per dedup batch: its Arrow passes (normalise, first and last lines) hold several copies
# of a batch's text, so 8,192 chat conversations at a time held hundreds of MB.
DEDUP_BATCH_BYTES = 16 << 20


class StageTimer:
    """Parameters and seconds per stage, for the manifest and the closing summary."""

    def __init__(self):
        self.stages: dict[str, dict] = {}

    @contextmanager
    def stage(self, name: str, **params) -> Iterator[dict]:
        info = {"params": params}
        start = time.perf_counter()
        yield info
        info["seconds"] = round(time.perf_counter() - start, 3)
        self.stages[name] = info

    def with_rates(self, n: int) -> dict[str, dict]:
        return {name: {**info, "records_per_s": round(n / max(info["seconds"], 1e-9), 1)}
                for name, info in self.stages.items()}


def build(
    source: Path, out: Path, settings: BuildSettings, *, engine: Engine | None = None, force: bool = False,
    quiet: bool = False, log: Log = print, name_topics: bool = True,
) -> MapDir:
    """Build the map of `source` into `out`; the previous map there stays until this one is done.
    `engine` runs the per-block work (default: this process).

    The map is published with keyword labels; then, when a local LLM is installed (and
    `name_topics`), it names the topics in place, so the map can be served meanwhile. With
    `name_topics=False` labels_status.json says "waiting" and `relabel` names them later.
    """
    source, out = Path(source), Path(out)
    engine = engine or LocalEngine()
    started = time.perf_counter()
    progress = Progress(quiet)
    if not source.is_file():
        raise AtlasError(f"{source} does not exist" if not source.exists() else f"{source} is not a file")
    source_hash = file_hash(source)
    check_target(out, source_hash, force)
    gpu = gpu_name()
    backend = layout_backend(settings.cuml, gpu)  # --cuml and --llm checked before any work
    model = label_model(settings.label, log)
    timer = StageTimer()
    with progress.ticking("ingest"), timer.stage("ingest", text_columns=settings.text_columns,
                                                 id_column=settings.id_column):
        data = read_dataset(source, text_columns=settings.text_columns, id_column=settings.id_column,
                            input_format=settings.input_format, skip_bad_lines=settings.skip_bad_lines)
    n = data.table.num_rows
    log(f"read {n:,} records from {source.name} ({int(data.empty.sum()):,} empty texts, "
        f"{data.invalid_utf8:,} with bytes that were not UTF-8)")
    if data.cut:
        log(f"{data.cut:,} text(s) longer than {MAX_TEXT_CHARS:,} characters are embedded, indexed and "
            "deduplicated by their start (their records keep them whole)")
    if data.skipped_lines:
        count = len(data.skipped_lines)
        log(f"skipped {count:,} bad line{'s' if count > 1 else ''}: {_numbers(data.skipped_lines)}")
    distinct = Distinct.each(n) if settings.embeddings_column else distinct_texts(data.text)
    places = len(distinct.first)
    if not distinct.all_distinct:
        log(f"{n - places:,} records repeat another's text: the kNN graph and UMAP see {places:,} distinct "
            "texts, and a text's copies share its place on the map")
    staging = staging_for(out)
    staging.path.mkdir(parents=True, exist_ok=True)
    try:
        vectors, embedder_info = _embed(data, settings, source_hash, staging, out, timer, progress, log, engine,
                                        gpu)
        with progress.ticking("neighbors"), timer.stage("neighbors", k=settings.neighbors.k, texts=places):
            texts_vectors = distinct.rows(vectors)  # one copy for the graph and UMAP
            graph = nearest_neighbors(texts_vectors, k=settings.neighbors.k, seed=settings.seed)
        pace = estimate.measure_pace()
        with timer.stage("project", **vars(settings.project), backend=backend, points=places) as info:
            info["pace"] = round(pace, 2)
            info["estimate_s"] = round(estimate.umap_seconds(places, settings.project, pace,
                                                             seeded=settings.seed is not None,
                                                             compiled=estimate.umap_compiled()), 1)
            log(f"projecting {places:,} points with UMAP: {estimate.say(info['estimate_s'])}")
            with progress.ticking("project"):
                layout = project(texts_vectors, graph, settings=settings.project, seed=settings.seed,
                                 engine=engine, backend=backend)
        neighbors, xy = distinct.neighbors(graph), distinct.spread(layout, settings.seed)
        del graph, texts_vectors
        with progress.ticking("cluster"), timer.stage("cluster", **vars(settings.cluster), backend=backend):
            hierarchy = cluster(distinct.every(layout), vectors, settings=settings.cluster, backend=backend,
                                empty=data.empty)
        with progress.ticking("keywords"), timer.stage("keywords", **vars(settings.keywords)):
            keywords, keyword_labels = topic_keywords(data.text, hierarchy, settings=settings.keywords)
        topics = _topics_table(xy, hierarchy, keywords, keyword_labels)
        with timer.stage("label", **vars(settings.label)) as info:  # keyword labels; the LLM's come later
            info["model"] = {"method": "keywords"}
        with progress.ticking("dedup"), timer.stage("dedup", **vars(settings.dedup)):
            features = partial(block_features, settings=settings.dedup, seed=settings.seed or 0)
            rows = _rows_within(data, DEDUP_BATCH_BYTES, settings.embed.chunk_size)
            dups = duplicates_from(concat(engine.map_batches(Task(features), _texts(data), rows), n),
                                   data.text, data.empty, neighbors, settings=settings.dedup)
        with timer.stage("write"):
            square = world(xy)
            codes = morton_codes(xy, square)
            order = np.argsort(codes, kind="stable")
            staging.write_records(data.table)
            staging.write_points(_points_table(data, xy, hierarchy, dups, order, codes))
            staging.write_topics(with_labels(topics, initial_labels(topics)))
            if model:
                staging.write_labels_status(naming_status(*naming_plan(model, settings.label, topics, None, engine),
                                                          state="waiting", done=0, total=len(topics)))
            vectors = vectors[order]  # map order from here on: Morton order keeps similar records together
            staging.write_embeddings(vectors)
            position = np.empty_like(order)
            position[order] = np.arange(len(order))
            found = neighbors.indices[order]
            staging.write_neighbors(np.where(found >= 0, position[found], -1), 1 - neighbors.distances[order])
            staging.write_dup_pairs(dups.pairs.to_table(position))
        with progress.ticking("index"), timer.stage("index"):
            staging.write_search_index(iter_texts(data.text, order))
        if n > settings.search.index_from:
            with progress.ticking("ann"), timer.stage("ann", **vars(settings.search)):
                # inserted in map order (keys = positions), neighbours come in runs: faster than input order
                index = build_index(vectors, np.arange(n), settings=settings.search, seed=settings.seed)
                staging.write_ann_index(index)
        staging.write_manifest(_manifest(source, source_hash, data, settings, embedder_info,
                                         hierarchy, dups, xy, square, timer, engine,
                                         time.perf_counter() - started))
    except AtlasError:
        shutil.rmtree(staging.path, ignore_errors=True)
        raise
    result = publish(staging, out)
    if model and name_topics:
        log(f"map ready after {time.perf_counter() - started:.0f}s: `atlas serve {out}` shows it now, "
            "and the topics' names as the model makes them")
        _name_topics(result, settings, engine, quiet, log)
    _summary(result, log)
    return result


def _name_topics(mapdir: MapDir, settings: BuildSettings, engine: Engine, quiet: bool, log: Log) -> None:
    """LLM names on the published map; their time joins the manifest's stage times."""
    relabel(mapdir, settings.label, engine=engine, quiet=quiet, log=log)
    manifest = mapdir.manifest()
    labels = manifest["labels"]
    stage = {**manifest["stages"]["label"], "estimate_s": labels["estimate_s"],
             "records_per_s": round(manifest["records"] / max(labels["seconds"], 1e-9), 1)}
    mapdir.write_manifest({**manifest, "stages": {**manifest["stages"], "label": stage},
                           "total_seconds": manifest["total_seconds"] + labels["seconds"]})


def _embed(data: Dataset, settings: BuildSettings, source_hash: str, staging: MapDir, out: Path,
           timer: StageTimer, progress: Progress, log: Log, engine: Engine, gpu: str | None
           ) -> tuple[np.ndarray, dict]:
    n = data.table.num_rows
    if settings.embeddings_column:
        with timer.stage("embed", column=settings.embeddings_column):
            vectors = embedding.vectors_from_column(
                data.table.column(_column(data, settings.embeddings_column)), settings.embeddings_column)
        return vectors, {"name": f"column:{settings.embeddings_column}", "spec": None,
                         "dim": vectors.shape[1], "why": "vectors from the input file"}
    spec, why = embedding.choose_embedder(settings.embed.embedder, n, settings.embed, gpu)
    device = embedding.runs_on(spec, settings.embed, gpu)
    log(f"embedder: {spec} on {device_label(device, gpu)} ({why})")
    key = _hash(source_hash, spec, embedding.embedder_name(spec), device, settings.text_columns, atlas.__version__)
    batch_size = embedding.batch_size(settings.embed, device)
    with timer.stage("embed", embedder=spec, batch_size=batch_size) as info:
        info["key"] = key
        previous = _previous_embeddings(MapDir(out), key)
        if previous is not None:
            log(f"embeddings reused from the previous build in {out}")
            return previous
        vectors, truncated = _embed_chunks(data, spec, settings, staging.embedding_chunks(key), progress, engine,
                                           info, log, embedding.PIECE[device], batch_size)
    return vectors, {"name": embedding.embedder_name(spec), "spec": spec, "dim": int(vectors.shape[1]),
                     "device": device_label(device, gpu), "why": why, "truncated": truncated}


def _embed_chunks(data: Dataset, spec: str, settings: BuildSettings, chunks: EmbeddingChunks,
                  progress: Progress, engine: Engine, info: dict, log: Log, piece: int,
                  batch_size: int) -> tuple[np.ndarray, int]:
    """Embed chunk by chunk, skipping chunks an interrupted build already saved.

    The engine gets batches of `piece` texts, so the bar moves every few seconds; a
    chunk is saved once its texts are all done. Before it starts, a few of its forward passes
    are timed and how long all will take is printed (not for the static embedder: seconds).
    """
    size, n = settings.embed.chunk_size, data.table.num_rows
    todo = [index for index in range(-(-n // size)) if not chunks.done(index)]
    texts, piece = _texts(data), min(size, piece)
    # Only the last chunk can be short, so the missing chunks, end to end, batch into chunks.
    missing = pa.concat_tables([texts.slice(index * size, size) for index in todo]) if todo else texts.slice(0, 0)
    if todo and spec != "static":
        embedder = embedding.load_embedder(spec, settings.embed, cache_dir())
        info["estimate_s"] = round(estimate.embed_seconds(embedder, missing.column(0), piece, batch_size), 1)
        log(f"embedding {n:,} texts ({data.length.mean():.0f} characters on average): "
            f"{estimate.say(info['estimate_s'])}")
    with progress.bar("embed", total=n) as bar:
        bar.update(n - sum(min(size, n - index * size) for index in todo))
        if todo and spec == "static":
            embedding.static_model_path(cache_dir())  # distilled once here, not by each worker at once
        task = Task(EncodeTexts, (spec, settings.embed, cache_dir()), gpu=True)
        waiting = [(index, min(size, n - index * size)) for index in todo]
        held: list[dict] = []
        for batch in engine.map_batches(task, missing, piece):
            held.append(batch)
            bar.update(len(batch["vector"]))
            vectors, truncated = (np.concatenate([b[key] for b in held]) for key in ("vector", "truncated"))
            while waiting and len(vectors) >= waiting[0][1]:
                index, count = waiting.pop(0)
                chunks.save(index, vectors[:count], int(truncated[:count].sum()))
                vectors, truncated = vectors[count:], truncated[count:]
            held = [{"vector": vectors, "truncated": truncated}]
    return _load_chunks(chunks, n, size)


def _load_chunks(chunks: EmbeddingChunks, n: int, size: int) -> tuple[np.ndarray, int]:
    """The saved chunks end to end, as saved (float16: half of float32's memory, and the same
    vectors, since a chunk keeps no more), and how many texts were truncated."""
    vectors, truncated = None, 0
    for index in range(-(-n // size)):
        chunk, cut = chunks.load(index)
        if vectors is None:
            vectors = np.empty((n, chunk.shape[1]), chunk.dtype)
        vectors[index * size:index * size + len(chunk)] = chunk
        truncated += cut
    return vectors, truncated


def _texts(data: Dataset) -> pa.Table:
    """The table of texts a batch function reads (its first column)."""
    return pa.table({"text": data.text})


def _rows_within(data: Dataset, budget: int, most: int) -> int:
    """Records per batch, at most `most`, so an average batch holds `budget` bytes of text."""
    mean = pc.sum(pc.binary_length(data.text)).as_py() / max(len(data.text), 1)
    return int(np.clip(budget // max(mean, 1), 256, most))


def _previous_embeddings(previous: MapDir, key: str) -> tuple[np.ndarray, dict] | None:
    """The previous map's embeddings (in input order) and embedder, if made with the same key."""
    if not previous.is_map():
        return None
    try:
        manifest = previous.manifest()
    except AtlasError:  # another map format: its embeddings are not reused
        return None
    if manifest.get("stages", {}).get("embed", {}).get("key") != key:
        return None
    rows = previous.points([ROW]).column(ROW).to_numpy()
    vectors = np.empty(previous.embeddings().shape, previous.embeddings().dtype)
    vectors[rows] = previous.embeddings()
    return vectors, manifest["embedder"]


def _column(data: Dataset, name: str) -> str:
    if name not in data.table.column_names:
        raise AtlasError(f"column {name!r} not found; columns are: {', '.join(data.table.column_names)}")
    return name


def _points_table(data: Dataset, xy: np.ndarray, hierarchy: Hierarchy, dups: Duplicates,
                  order: np.ndarray, codes: np.ndarray) -> pa.Table:
    has_dup = dups.group[order] >= 0
    columns = {
        ID: data.table.column(ID).take(pa.array(order)),
        ROW: pa.array(order.astype(np.int64)),
        X: pa.array(xy[order, 0]),
        Y: pa.array(xy[order, 1]),
        **{topic_column(lvl): pa.array(hierarchy.labels[lvl][order]) for lvl in range(hierarchy.n_levels)},
        OUTLIER: pa.array(hierarchy.outlier[order]),
        TEXT_LEN: pa.array(data.length[order].astype(np.int32)),
        EMPTY: pa.array(data.empty[order]),
        DUP_GROUP: pa.array(dups.group[order], mask=~has_dup),
        DUP_KIND: pa.array(np.array(KINDS, dtype=object)[dups.kind[order]], pa.string()),
        DUP_SURVIVOR: pa.array(dups.survivor[order]),
        MORTON: pa.array(codes[order]),
    }
    return pa.table(columns)


def _topics_table(xy: np.ndarray, hierarchy: Hierarchy, keywords: list[list[str]],
                  keyword_labels: list[str]) -> pa.Table:
    n_topics = len(hierarchy.parent)
    sizes = np.zeros(n_topics, np.int64)
    for level_labels in hierarchy.labels:
        sizes += np.bincount(level_labels, minlength=n_topics)
    positions = label_positions(xy, hierarchy.labels, n_topics)
    return pa.table({
        TOPIC_ID: pa.array(np.arange(n_topics, dtype=np.int32)),
        LEVEL: pa.array(hierarchy.level.astype(np.int32)),
        PARENT_ID: pa.array(hierarchy.parent, mask=hierarchy.parent < 0),
        KEYWORD_LABEL: pa.array(keyword_labels, pa.string()),
        KEYWORDS: pa.array(keywords, pa.list_(pa.string())),
        SIZE: pa.array(sizes),
        X: pa.array(positions[:, 0]),
        Y: pa.array(positions[:, 1]),
    })


def _manifest(source, source_hash, data, settings, embedder_info, hierarchy, dups, xy, square, timer, engine,
              total_seconds) -> dict:
    kinds = {name: int((dups.kind == code).sum()) for code, name in enumerate(KINDS) if name}
    groups = dups.group[dups.group >= 0]
    return {
        "atlas_version": atlas.__version__,
        "build_id": uuid.uuid4().hex,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": {"path": str(source.resolve()), "hash": source_hash, "format": data.format,
                   "bytes": source.stat().st_size},
        "columns": {"text": list(settings.text_columns), "id": settings.id_column,
                    "embeddings": settings.embeddings_column},
        "records": data.table.num_rows,
        "empty_texts": int(data.empty.sum()),
        "invalid_utf8_records": data.invalid_utf8,
        "cut_texts": data.cut,
        "skipped_lines": {"count": len(data.skipped_lines), "first": data.skipped_lines[:SKIPPED_KEPT]},
        "embedder": embedder_info,
        "engine": engine.describe(),
        "labels": {"method": "keywords"},
        "levels": hierarchy.n_levels,
        "topics_per_level": [len(np.unique(lv)) for lv in hierarchy.labels],
        "outliers": int(hierarchy.outlier.sum()),
        "duplicates": {
            "groups": len(np.unique(groups)),
            "records_in_groups": len(groups),
            "removable": int((~dups.survivor).sum()),
            "largest_group": int(np.bincount(groups).max()) if len(groups) else 0,
            "by_kind": kinds,
        },
        "extent": extent(xy),
        "world": square,
        "seed": settings.seed,
        "settings": settings.as_dict(),
        "stages": timer.with_rates(data.table.num_rows),
        "total_seconds": round(total_seconds, 2),
    }


def _numbers(lines: list[int]) -> str:
    """Line numbers for a log line: the first SKIPPED_SHOWN, then how many more."""
    shown = ", ".join(str(n) for n in lines[:SKIPPED_SHOWN])
    return shown + (f" and {len(lines) - SKIPPED_SHOWN:,} more" if len(lines) > SKIPPED_SHOWN else "")


def _hash(*parts) -> str:
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=12).hexdigest()


def _summary(result: MapDir, log: Log) -> None:
    m = result.manifest()
    stages = ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in m["stages"].items())
    log(f"map written to {result.path}: {m['records']:,} records, "
        f"topics per level {m['topics_per_level']}, {m['duplicates']['groups']:,} duplicate groups")
    log(f"stage times: {stages}; total {m['total_seconds']:.1f}s")
