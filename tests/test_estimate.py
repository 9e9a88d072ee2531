"""Stage estimates: the forward passes the embedding will run, the probe that prices them,
and the UMAP and naming cost models."""

import importlib.machinery
import sys

import numpy as np
import pyarrow as pa
import pytest

from atlas.pipeline import estimate
from atlas.pipeline.embed import load_embedder
from atlas.settings import EmbedSettings, ProjectSettings, cache_dir


def test_forward_passes_sort_each_piece_and_pad_to_its_longest():
    tokens = np.array([5, 1, 3, 8, 2, 7])
    passes = estimate.forward_passes(tokens, piece=4, batch_size=2)
    assert [p.tolist() for p in passes] == [[1, 2], [0, 3], [4, 5]]
    assert estimate.padded_sizes(tokens, passes).tolist() == [2 * 3, 2 * 8, 2 * 7]


@pytest.mark.parametrize("spec", ["minilm", "minilm-torch"])
def test_token_counts_are_what_the_model_sees(spec):
    embedder = load_embedder(spec, EmbedSettings(), cache_dir())
    # [CLS] and [SEP] around each text; "hello world" is two tokens; a long text stops at the window
    assert embedder.token_counts(["", "hello world", "word " * 400]).tolist() == [2, 4, 256]


def test_the_passes_laid_out_are_the_ones_the_embedder_runs(small_table):
    """The ONNX embedder, given a piece, runs exactly the passes (texts x padded tokens) the estimate prices."""
    embedder = load_embedder("minilm", EmbedSettings(), cache_dir())
    texts = small_table.column("description").to_pylist()[:48]
    shapes = []

    def recording(ids, mask):
        shapes.append(ids.shape)
        return np.zeros((len(ids), 384), np.float32)

    embedder.forward = recording
    for start in range(0, 48, 32):  # the engine's pieces of 32
        embedder.encode(texts[start:start + 32])
    tokens = embedder.token_counts(texts)
    passes = estimate.forward_passes(tokens, piece=32, batch_size=16)
    assert [(len(p), int(tokens[p].max())) for p in passes] == shapes
    assert estimate.padded_sizes(tokens, passes).sum() == sum(a * b for a, b in shapes)
    assert len(shapes) == 3 and len(set(shapes)) == 3  # two full passes and the short piece's one


class Clocked:
    """An embedder whose passes take `per_token` seconds per padded token, on a fake clock."""

    def __init__(self, per_token: float):
        self.per_token, self.now, self.calls = per_token, 0.0, []

    def token_counts(self, texts):
        return np.array([len(t) for t in texts])

    def encode(self, texts):
        self.calls.append(self.per_token * len(texts) * max(map(len, texts)))  # seconds it takes
        self.now += self.calls[-1]
        return np.zeros((len(texts), 4), np.float32)


def test_embed_seconds_prices_every_pass_from_the_timed_ones(monkeypatch):
    embedder = Clocked(per_token=0.001)
    monkeypatch.setattr(estimate.time, "perf_counter", lambda: embedder.now)
    texts = pa.array(["x" * (1 + i % 37) for i in range(1000)])
    seconds = estimate.embed_seconds(embedder, texts, piece=256, batch_size=16)
    tokens = np.array([1 + i % 37 for i in range(1000)])
    sizes = estimate.padded_sizes(tokens, estimate.forward_passes(tokens, 256, 16))
    assert seconds == pytest.approx(0.001 * sizes.sum())
    assert sizes.sum() == 20_088  # 1000 texts of 19 tokens on average, padded within a pass: 20.1 each
    # a warm-up pass, then passes until 3 s are spent (at least 8 of them)
    timed = embedder.calls[1:]
    assert len(timed) > estimate.PROBE_PASSES and sum(timed[:-1]) < estimate.PROBE_SECONDS <= sum(timed)


def test_a_large_input_is_laid_out_from_a_sample_of_pieces(monkeypatch):
    rows = estimate.sample_pieces(200, piece=2)
    assert len(rows) == 2 * estimate.SAMPLE_PIECES  # 64 of the 100 pieces, whole
    assert np.all(rows[::2] % 2 == 0) and np.all(rows[1::2] == rows[::2] + 1)
    assert estimate.sample_pieces(100, piece=2).tolist() == list(range(100))  # 50 pieces: all of them
    embedder = Clocked(per_token=0.5)
    monkeypatch.setattr(estimate.time, "perf_counter", lambda: embedder.now)
    seconds = estimate.embed_seconds(embedder, pa.array(["abc"] * 200), piece=2, batch_size=2)
    assert seconds == pytest.approx(0.5 * 3 * 200)  # every text, 3 tokens, no padding
    assert len(embedder.calls) == 1 + estimate.PROBE_PASSES  # 8 passes of 1.5 s: over 3 s


def test_umap_and_label_estimates():
    fixed, fit = estimate.UMAP_FIXED_S, estimate.FIT_S_PER_RECORD_EPOCH
    assert estimate.umap_seconds(8000, ProjectSettings(), 1.0, seeded=False) == fixed + 8000 * 500 * fit / 2
    assert estimate.umap_seconds(20_000, ProjectSettings(), 2.0, seeded=True) == 2 * (fixed + 20_000 * 200 * fit)
    sampled = ProjectSettings(fit_sample=10_000, place_epochs=30)  # fit 10k (500 epochs), place 90k, both cores
    placed = (100_000 * estimate.SEARCH_S_PER_RECORD + 90_000 * 30 * estimate.PLACE_S_PER_RECORD_EPOCH) / 2
    for seeded, fitting in [(False, 10_000 * 500 * fit / 2), (True, 10_000 * 500 * fit)]:
        assert estimate.umap_seconds(100_000, sampled, 1.0, seeded=seeded) == pytest.approx(
            fixed + fitting + placed)
    # 886k PyPI records, fit 200k: 60 s on the quiet box (56-62 s measured), 102 s seeded
    assert [round(estimate.umap_seconds(886_323, ProjectSettings(), 1.0, seeded=s)) for s in (False, True)] == [60, 102]
    # per topic: the floor for SmolLM2's 98 MB, 2 s per GB above it (Qwen2.5-Coder-0.5B: 0.98 s)
    assert estimate.label_seconds(100, 1.5, 98_362_432) == pytest.approx(100 * 0.6 * 1.5)
    assert estimate.label_seconds(100, 1.0, 491_400_064) == pytest.approx(100 * 0.9828)
    assert [estimate.say(s) for s in (3, 42, 89, 91, 400)] == [
        "about 5 s", "about 40 s", "about 90 s", "about 2 min", "about 7 min"]


def test_pace_is_the_share_of_a_core(monkeypatch):
    monkeypatch.setattr(estimate.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(estimate.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert estimate.measure_pace() == 4.5
    monkeypatch.setattr(estimate.os, "getloadavg", lambda: (0.5, 0.0, 0.0))
    assert estimate.measure_pace() == 1.0  # a quiet machine runs at the reference's pace


def test_umap_estimate_prices_the_first_compilation_of_pynndescent(tmp_path, monkeypatch):
    """A fresh install's first `import umap` compiles pynndescent's kernels: priced until Numba's
    cache (next to the sources, or NUMBA_CACHE_DIR mirroring their path) holds them."""
    settings, compiled = ProjectSettings(), estimate.umap_seconds(8000, ProjectSettings(), 2.0, seeded=False)
    assert estimate.umap_seconds(8000, settings, 2.0, seeded=False, compiled=False) == pytest.approx(
        compiled + 2.0 * estimate.UMAP_COMPILE_S)
    source = tmp_path / "site-packages" / "pynndescent"
    source.mkdir(parents=True)
    spec = importlib.machinery.ModuleSpec("pynndescent", None, is_package=True)
    spec.submodule_search_locations = [str(source)]
    monkeypatch.setattr(estimate.importlib.util, "find_spec", lambda name: spec)
    monkeypatch.delitem(sys.modules, "umap", raising=False)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert not estimate.umap_compiled()
    mirrored = tmp_path / "numba" / source.resolve().relative_to(source.resolve().anchor)
    mirrored.mkdir(parents=True)
    (mirrored / "distances.euclidean-31.py311.nbi").touch()
    assert not estimate.umap_compiled()  # a cache elsewhere is not Numba's
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert estimate.umap_compiled()
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "distances.euclidean-31.py311.nbi").touch()
    assert estimate.umap_compiled()
    monkeypatch.setattr(estimate.importlib.util, "find_spec", lambda name: None)
    assert estimate.umap_compiled()  # no pynndescent: nothing to price (project.py says what is missing)
