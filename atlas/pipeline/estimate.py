"""Time estimates printed before a stage, from the input's size and text lengths.

Embedding: a probe of 32 of the input's own texts, spread over its length order, is embedded
and timed; the whole input takes that time scaled by its total length (in MiniLM tokens).
UMAP and naming: costs modelled on a quiet 2-core box, scaled by `pace`, the share of a core
one task gets here and now (a busy machine stretches them alike).
"""

from __future__ import annotations

import os
import time

import numpy as np

PROBE = 32  # texts embedded to time the embedding
WINDOW = 256  # MiniLM truncates here
# Seconds on the reference box (quiet, 2 cores), from docs/BENCHMARKS.md: UMAP took 14 s on the
# 8,000-record sample (500 epochs), 24 s at 21k and 66 s at 100k (200 epochs, seeded).
UMAP_FIXED_S, UMAP_S_PER_RECORD_EPOCH = 5.0, 2.6e-6
LABEL_S_PER_TOPIC = 0.6  # SmolLM2 on one thread: 1.3 s per topic at a load of 3 per core (bench/demo.py)


def cost_units(lengths: np.ndarray) -> float:
    """MiniLM's work for texts of these lengths (characters): about one token per 4 characters,
    plus its special tokens, up to its window."""
    return float(np.sum(np.minimum(np.asarray(lengths, np.float64) / 4 + 2, WINDOW)))


def probe_rows(lengths: np.ndarray) -> np.ndarray:
    """PROBE rows spread evenly over the input's length order: their cost is the input's, in small."""
    order = np.argsort(lengths, kind="stable")
    return order[np.linspace(0, len(lengths) - 1, min(PROBE, len(lengths))).astype(int)]


def embed_seconds(embedder, probe: list[str], lengths: np.ndarray) -> float:
    """Seconds to embed texts of `lengths`, from the time `embedder` takes on `probe` (some of them)."""
    embedder.encode(probe)  # first-call costs (allocations for new shapes) out of the measure
    start = time.perf_counter()
    embedder.encode(probe)
    probe_units = cost_units(np.fromiter(map(len, probe), np.int64, len(probe)))
    return (time.perf_counter() - start) * cost_units(lengths) / max(probe_units, 1.0)


def measure_pace() -> float:
    """This machine's slowness against the reference box for single-threaded work (1 = as fast):
    with L tasks wanting the C cores (the 1-minute load average), one task gets about C/L of a core."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def umap_seconds(n: int, epochs: int | None, pace: float) -> float:
    epochs = epochs or (500 if n <= 10_000 else 200)  # umap-learn's default for n_epochs=None
    return (UMAP_FIXED_S + n * epochs * UMAP_S_PER_RECORD_EPOCH) * pace


def label_seconds(topics: int, pace: float) -> float:
    return topics * LABEL_S_PER_TOPIC * pace


def say(seconds: float) -> str:
    """'about 40 s', 'about 3 min'."""
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    return f"about {round(seconds / 60):.0f} min"
