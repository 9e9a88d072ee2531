"""Time estimates printed before a stage, from the input's size and text lengths.

Embedding: the forward passes the build will run are laid out from the texts' token counts
(the engine hands the embedder pieces of texts in input order; the embedder sorts a piece by
token count and pads each batch to its longest text), so each pass's padded size (texts ×
longest) is known before any runs. Some of those very passes, drawn at random, are embedded
and timed; their seconds per padded token price the rest. Timing a random draw of the real
passes keeps each pass's overhead and the longer texts' dearer attention in, in proportion.
UMAP and naming: costs modelled on a quiet 2-core box, scaled by `pace`, the share of a core
one task gets here and now (a busy machine stretches them alike). UMAP's fit runs on both
cores, or on one with a seed; the search and placement of the records beyond its sample run
on both either way. The first `import umap` after an install compiles pynndescent's kernels
(Numba caches them): that is priced too, when they are not in the cache yet.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from atlas.pipeline.minilm import sorted_batches
from atlas.settings import ProjectSettings

PROBE_PASSES, PROBE_SECONDS = 8, 3.0  # forward passes timed to price the embedding: at least 8, for 3 s
SAMPLE_PIECES = 64  # pieces tokenised to lay out the passes of a large input (all of a smaller one)
# CPU seconds (one core's) of project.py's pieces on the 100k PyPI sample's static embeddings,
# measured 2026-11-27: UMAP's fit of 25k records (200 epochs) 10.6 s with or without a seed,
# the two-hop search of 100k records 0.8 s, placing 50k–75k records (30 epochs) 1.4–1.9 s. On
# both cores, half the seconds. Printed against measured: docs/BENCHMARKS.md "Estimates".
UMAP_FIXED_S, FIT_S_PER_RECORD_EPOCH = 5.0, 2.1e-6
SEARCH_S_PER_RECORD, PLACE_S_PER_RECORD_EPOCH = 8e-6, 9e-7
REFERENCE_CORES = 2
# `import umap` when Numba's cache lacks pynndescent's kernels (the first build after an install):
# 19.6 s against 3.0 s with them cached, on this project's 2-core box, 2026-11-28.
UMAP_COMPILE_S = 16.6
# Naming, per topic (2 contexts of one thread): a model's weights are read for every token, so
# the cost grows with its file. Quiet, measured: SmolLM2 (98 MB) 0.45-0.51 s, Qwen2.5-Coder-0.5B
# (491 MB) 0.77-0.91 s (docs/BENCHMARKS.md); no model names a topic in under LABEL_S_PER_TOPIC.
LABEL_S_PER_TOPIC, LABEL_S_PER_GB = 0.6, 2.0


def forward_passes(tokens: np.ndarray, piece: int, batch_size: int) -> list[np.ndarray]:
    """The rows of each forward pass, as the build runs them: pieces of `piece` rows in input
    order, each sorted by token count (stable) and cut into batches of `batch_size`."""
    return [start + rows for start in range(0, len(tokens), piece)
            for rows in sorted_batches(tokens[start:start + piece], batch_size)]


def padded_sizes(tokens: np.ndarray, passes: list[np.ndarray]) -> np.ndarray:
    """Each pass's padded size: its texts × its longest text's tokens."""
    return np.array([len(rows) * tokens[rows].max() for rows in passes], np.int64)


def sample_pieces(n: int, piece: int, seed: int = 0) -> np.ndarray:
    """Rows of up to SAMPLE_PIECES whole pieces, drawn at random (all rows when the input is small)."""
    count = -(-n // piece)
    if count <= SAMPLE_PIECES:
        return np.arange(n)
    chosen = np.sort(np.random.default_rng(seed).choice(count, SAMPLE_PIECES, replace=False))
    return np.concatenate([np.arange(p * piece, min(n, (p + 1) * piece)) for p in chosen])


def embed_seconds(embedder, texts: pa.ChunkedArray | pa.Array, piece: int, batch_size: int) -> float:
    """Seconds for `embedder` (with a `token_counts` method) to embed `texts` in the build's
    pieces and batches: a sample of pieces is laid out in passes, passes drawn at random are
    timed (for PROBE_SECONDS, at least PROBE_PASSES of them), and their seconds per padded
    token price all the passes, scaled from the sample to the whole input."""
    rows = sample_pieces(len(texts), piece)
    sample = texts.take(pa.array(rows)).to_pylist()
    tokens = np.asarray(embedder.token_counts(sample))
    passes = forward_passes(tokens, piece, batch_size)
    sizes = padded_sizes(tokens, passes)
    drawn = np.random.default_rng(0).permutation(len(passes))
    embedder.encode([sample[i] for i in passes[int(np.argmin(sizes))]])  # first-call costs out of the measure
    spent, timed = 0.0, 0
    while timed < len(drawn) and (timed < PROBE_PASSES or spent < PROBE_SECONDS):
        start = time.perf_counter()
        embedder.encode([sample[i] for i in passes[drawn[timed]]])
        spent, timed = spent + time.perf_counter() - start, timed + 1
    return spent / sizes[drawn[:timed]].sum() * sizes.sum() * len(texts) / len(rows)


def measure_pace() -> float:
    """This machine's slowness against the reference box for single-threaded work (1 = as fast):
    with L tasks wanting the C cores (the 1-minute load average), one task gets about C/L of a core."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def umap_seconds(n: int, settings: ProjectSettings, pace: float, *, seeded: bool, compiled: bool = True) -> float:
    """UMAP's fit on up to `settings.fit_sample` records, and the placement of the others (and,
    unless `compiled`, the compilation of pynndescent's kernels: `umap_compiled`)."""
    fitted = min(n, settings.fit_sample)
    compiling = 0.0 if compiled else UMAP_COMPILE_S
    return (compiling + fit_seconds(fitted, settings, seeded=seeded) + place_seconds(n, n - fitted, settings)) * pace


def umap_compiled() -> bool:
    """Whether importing umap compiles nothing: it is imported already, or Numba's cache holds
    pynndescent's kernels (next to its sources, or under NUMBA_CACHE_DIR, where Numba mirrors
    the sources' path)."""
    spec = importlib.util.find_spec("pynndescent")
    if "umap" in sys.modules or spec is None or not spec.submodule_search_locations:
        return True  # nothing to compile (or project.py will say what is missing)
    source = Path(next(iter(spec.submodule_search_locations))).resolve()
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    places = [source / "__pycache__", *([Path(cache_dir) / source.relative_to(source.anchor)] if cache_dir else [])]
    return any(next(place.glob("*.nbi"), None) for place in places if place.is_dir())


def fit_seconds(fitted: int, settings: ProjectSettings, *, seeded: bool) -> float:
    """UMAP's fit on the reference box: on one core with a seed (umap-learn's rule), else on both."""
    epochs = settings.n_epochs or (500 if fitted <= 10_000 else 200)  # umap-learn's default for n_epochs=None
    return UMAP_FIXED_S + fitted * epochs * FIT_S_PER_RECORD_EPOCH / (1 if seeded else REFERENCE_CORES)


def place_seconds(n: int, placed: int, settings: ProjectSettings) -> float:
    """The two-hop search of all `n` records and the placement of `placed`, on both cores of
    the reference box (none without a sample fit)."""
    if not placed:
        return 0.0
    return (n * SEARCH_S_PER_RECORD + placed * settings.place_epochs * PLACE_S_PER_RECORD_EPOCH) / REFERENCE_CORES


def label_seconds(topics: int, pace: float, model_bytes: int) -> float:
    """Naming `topics` with a GGUF file of `model_bytes`."""
    return topics * max(LABEL_S_PER_TOPIC, LABEL_S_PER_GB * model_bytes / 1e9) * pace


def say(seconds: float) -> str:
    """'about 40 s', 'about 3 min'."""
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    return f"about {round(seconds / 60):.0f} min"
