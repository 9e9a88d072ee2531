"""Name a map's topics with the local LLM: after a build publishes the map, or later (`atlas relabel`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.llm.cache import AnswerCache
from atlas.llm.models import (
    DEFAULT,
    FAST,
    INSTALL_HINT,
    ModelFile,
    answers_per_topic,
    find_model,
    installed_path,
    naming_models,
)
from atlas.mapdir import MapDir
from atlas.pipeline.embed import load_embedder
from atlas.pipeline.engine import Engine, LocalEngine
from atlas.pipeline.estimate import label_seconds, measure_pace, say
from atlas.pipeline.label import TopicLabels, keyword_labels, llm_labels, representative_texts
from atlas.pipeline.label_facts import sampled_texts, topic_facts
from atlas.pipeline.label_fit import FitScorer
from atlas.pipeline.label_vocabulary import map_vocabulary
from atlas.progress import Progress
from atlas.records import point_texts
from atlas.schema import (
    KEYWORD_LABEL,
    KEYWORDS,
    LABEL,
    LABEL_COLUMNS,
    LABEL_SOURCE,
    LEVEL,
    OUTLIER,
    PARENT_ID,
    ROW,
    SIZE,
    check_level,
    topic_column,
)
from atlas.settings import EmbedSettings, LabelSettings, cache_dir
from atlas.vectors import topic_centres

Log = Callable[[str], None]
CHECKPOINT_S = 1.0  # while naming, topics.parquet is rewritten at most this often
# The default model names every level when that takes about this long or less on a quiet
# 2-core box (estimate.label_seconds). On a map with more topics the fast model names the
# finest level, which holds most of them (886k PyPI summaries: 405 of 515), and the default
# the levels above, whose names a reader sees first: the build stays within 10 minutes there.
FULL_NAMING_S = 300.0


def label_model(settings: LabelSettings, log: Log) -> ModelFile | None:
    """The local model that will name the topics, or None for keyword labels (with a notice
    when none is installed and the method was not chosen)."""
    if settings.method == "keywords":
        return None
    model = find_model(settings.model, cache_dir())
    if model is None:
        if settings.method == "llm":
            raise AtlasError(f"--labels llm needs a local model: pass --llm PATH.gguf, or {INSTALL_HINT}")
        log(f"labels from keywords: no local LLM installed ({INSTALL_HINT})")
    return model


def naming_plan(model: ModelFile, settings: LabelSettings, topics: pa.Table, levels: set[int] | None,
                engine: Engine | None = None) -> tuple[ModelFile, ModelFile | None]:
    """The model that names the levels above the finest, and the one that names the finest
    (None: the first names every level). The fast model names the finest level when the
    default was not asked for by name and would take over FULL_NAMING_S to name every topic to
    label in this process; the default still names the finest topics the fast model can only
    leave to their keyword lists, also when only the finest level is to be named. On a cluster
    (an `engine` other than LocalEngine) one model names every level: each model takes an actor
    per CPU there, so a second pool would wait for the first's CPUs."""
    deepest = int(pc.max(topics.column(LEVEL)).as_py())
    if (settings.model is not None or model.name != DEFAULT or not isinstance(engine or LocalEngine(), LocalEngine)
            or (levels is not None and deepest not in levels)
            or label_seconds(topics_to_label(topics, levels), 1.0, model.path.stat().st_size) <= FULL_NAMING_S):
        return model, None
    path = installed_path(FAST, cache_dir())
    if path is None:
        return model, None
    return model, ModelFile(FAST, path)


def naming_status(model: ModelFile, finest: ModelFile | None, **status) -> dict:
    """labels_status.json's fields, with the models that name the topics."""
    return {**status, "model": model.name, **({"finest_model": finest.name} if finest else {})}


def initial_labels(topics: pa.Table) -> TopicLabels:
    """Keyword labels: what a map shows until (or unless) the LLM names its topics."""
    return keyword_labels(topics.column(KEYWORDS).to_pylist(), topics.column(KEYWORD_LABEL).to_pylist())


def topics_to_label(topics: pa.Table, levels: set[int] | None) -> int:
    level = topics.column(LEVEL).to_numpy()
    return len(level) if levels is None else int(np.isin(level, list(levels)).sum())


def make_labels(
    texts: pa.ChunkedArray, vectors: np.ndarray, labels: np.ndarray, outlier: np.ndarray,
    topics: pa.Table, model: ModelFile, settings: LabelSettings, progress: Progress, log: Log,
    *, levels: set[int] | None = None, current: TopicLabels | None = None, embedder: str | None = None,
    engine: Engine | None = None, finest: ModelFile | None = None,
    on_topic: Callable[[TopicLabels], None] = lambda result: None,
) -> tuple[TopicLabels, dict]:
    """LLM labels for every topic in `topics` (topic_id order), and what made them, for the manifest.

    `texts`, `vectors`, `labels` (levels, N) and `outlier` describe the records in one order;
    `embedder` is the spec that made `vectors` (it judges candidate names by meaning; None
    when the vectors came from the input, and then only the cheap checks apply).
    `engine` hosts the model (default: this process; on Ray, a pool of actors); `finest`,
    when given, names the finest level instead (naming_plan).
    `on_topic` gets the partial result after each topic.
    """
    keywords = topics.column(KEYWORDS).to_pylist()
    fallback = topics.column(KEYWORD_LABEL).to_pylist()
    from atlas.llm.llama import LlamaCompleter

    started, cpu_started = time.perf_counter(), time.process_time()
    parent, level = topics.column(PARENT_ID).fill_null(-1).to_numpy(), topics.column(LEVEL).to_numpy()
    centroids = topic_centres(vectors, labels, len(topics))
    examples = representative_texts(texts, vectors, labels, ~outlier, centroids, central=settings.central_texts,
                                    spread=settings.spread_texts)
    sampled = sampled_texts(texts, labels, len(topics))
    facts = topic_facts(sampled, parent, topics.column(SIZE).to_numpy())
    vocabulary = map_vocabulary(texts)
    scorer = None
    if embedder:
        names = load_embedder(embedder, EmbedSettings(), cache_dir())
        scorer = FitScorer(names.encode, centroids, level)
    engine = engine or LocalEngine()
    completer, fast = (engine.completer(partial(LlamaCompleter, m, threads=settings.threads), settings.contexts)
                       if m else None for m in (model, finest))
    todo = topics_to_label(topics, levels)
    samples = settings.samples or answers_per_topic(model)
    finest_samples = settings.samples or answers_per_topic(finest) if finest else 0
    fine = int((level == level.max()).sum()) if finest else 0
    pace = measure_pace()
    guess = (label_seconds(todo - fine, pace, model.path.stat().st_size)
             + (label_seconds(fine, pace, finest.path.stat().st_size) if finest else 0.0))
    log(f"naming {todo:,} topics with {naming_models(model.name, finest and finest.name)} ({model.path}): "
        f"{say(guess)}")
    cache = AnswerCache(cache_dir() / "label_answers.sqlite")
    try:
        with progress.bar("label", total=todo, unit="topic") as bar:
            def progressed(result: TopicLabels) -> None:
                bar.update(1)
                on_topic(result)

            result = llm_labels(parent, level, topics.column(SIZE).to_numpy(), keywords, fallback, examples,
                                completer, scorer=scorer, samples=samples, cache=cache, facts=facts, levels=levels,
                                current=current, on_topic=progressed, vocabulary=vocabulary, members=sampled,
                                finest=fast and (fast, finest_samples))
    finally:
        cache.close()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return result, {"method": "llm", "model": model.name, "model_path": str(model.path),
                    **({"finest_model": finest.name, "finest_model_path": str(finest.path),
                        "finest_samples": finest_samples} if finest else {}),
                    "prompt_form": "chat template" if completer.chat_template else "completion",
                    "judged_by": embedder, "contexts": completer.contexts, "samples": samples,
                    "seconds": round(seconds, 2), "seconds_per_topic": round(seconds / max(todo, 1), 3),
                    # CPU time of all threads: what the labelling costs when the machine is shared
                    "cpu_seconds_per_topic": round(cpu_seconds / max(todo, 1), 3),
                    "named_by_facts": result.origins()[1], "fell_back": result.source.count("keywords"),
                    "estimate_s": round(guess, 1)}


def relabel(mapdir: MapDir, settings: LabelSettings, *, levels: set[int] | None = None,
            engine: Engine | None = None, quiet: bool = False, log: Log = print) -> TopicLabels:
    """Redo a map's labels (all, or only at `levels`) without rebuilding; rewrites topics.parquet.

    The LLM's names land in topics.parquet every CHECKPOINT_S while it works, with the count
    in labels_status.json, so a server shows them as they come; an interrupted run leaves the
    names made so far (and the answer cache makes a rerun skip them). `engine` hosts the model.
    """
    manifest = mapdir.manifest()
    for level in sorted(levels or ()):
        check_level(level, manifest["levels"])
    topics = mapdir.topics()
    if KEYWORD_LABEL not in topics.column_names:  # a map built before topics had LLM labels
        topics = topics.append_column(KEYWORD_LABEL, topics.column(LABEL))
    settings = replace(settings, method=settings.method or "llm")
    model = label_model(settings, log)
    if model is None:
        result, info = initial_labels(topics), {"method": "keywords"}
        mapdir.write_topics(with_labels(topics, result))
        mapdir.write_manifest(relabelled_manifest(manifest, settings, info))
        mapdir.labels_status_path.unlink(missing_ok=True)
        return result
    points = mapdir.points()
    text = point_texts(mapdir.records(), manifest["columns"]["text"], points.column(ROW).to_numpy())
    labels = np.stack([points.column(topic_column(lvl)).to_numpy() for lvl in range(manifest["levels"])])
    current = (TopicLabels(*(topics.column(c).to_pylist() for c in LABEL_COLUMNS))
               if LABEL_SOURCE in topics.column_names else None)
    model, finest = naming_plan(model, settings, topics, levels, engine)
    status = naming_status(model, finest, state="naming", done=0, total=topics_to_label(topics, levels))
    mapdir.write_labels_status(status)
    last = time.monotonic()

    def checkpoint(result: TopicLabels) -> None:
        nonlocal last
        status["done"] += 1
        if time.monotonic() - last >= CHECKPOINT_S:
            mapdir.write_topics(with_labels(topics, result))
            mapdir.write_labels_status(status)
            last = time.monotonic()

    try:
        result, info = make_labels(
            text, mapdir.embeddings(), labels, points.column(OUTLIER).to_numpy(zero_copy_only=False),
            topics, model, settings, Progress(quiet), log,
            levels=levels, current=current, embedder=manifest["embedder"].get("spec"), engine=engine,
            finest=finest, on_topic=checkpoint,
        )
    except BaseException:
        mapdir.write_labels_status({**status, "state": "stopped"})
        raise
    mapdir.write_topics(with_labels(topics, result))
    mapdir.write_manifest(relabelled_manifest(mapdir.manifest(), settings, info))
    mapdir.write_labels_status({**status, "state": "done"})
    return result


def relabelled_manifest(manifest: dict, settings: LabelSettings, info: dict) -> dict:
    """The manifest naming the new labels' model and settings wherever it named the old ones."""
    params = asdict(settings)
    updated = {**manifest, "labels": info}
    if "settings" in manifest:
        updated["settings"] = {**manifest["settings"], "label": params}
    if "label" in manifest.get("stages", {}):
        stage = {**manifest["stages"]["label"], "params": params, "model": info, "seconds": info.get("seconds", 0)}
        updated["stages"] = {**manifest["stages"], "label": stage}
    return updated


def with_labels(topics: pa.Table, result: TopicLabels) -> pa.Table:
    """topics.parquet with its label, description and label_source columns set."""
    for name, values in zip(LABEL_COLUMNS, (result.label, result.description, result.source)):
        column = pa.array(values, pa.string())
        index = topics.schema.get_field_index(name)
        topics = topics.set_column(index, name, column) if index >= 0 else topics.append_column(name, column)
    return topics
