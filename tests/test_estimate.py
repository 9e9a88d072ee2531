"""Stage estimates: the cost model and the probe that times the embedding."""

import numpy as np

from atlas.pipeline import estimate


def test_cost_units_count_tokens_up_to_the_window():
    assert estimate.cost_units(np.array([0, 4, 2000])) == 2 + 3 + 256


def test_probe_spans_the_length_order():
    lengths = np.array([50, 10, 30, 20, 40])
    assert estimate.probe_rows(lengths).tolist() == [1, 3, 2, 4, 0]  # every row, shortest first
    rows = estimate.probe_rows(np.arange(1000)[::-1])
    assert len(rows) == estimate.PROBE and rows[0] == 999 and rows[-1] == 0


def test_embed_estimate_scales_the_probe_by_length():
    class Counting:
        def __init__(self):
            self.calls = []

        def encode(self, texts):
            self.calls.append(len(texts))
            return np.zeros((len(texts), 4), np.float32)

    embedder = Counting()
    probe = ["x" * 40, "y" * 80]
    seconds = estimate.embed_seconds(embedder, probe, np.array([40, 80] * 500))
    assert embedder.calls == [2, 2]  # a warm-up, then the timed run
    assert seconds >= 0


def test_umap_and_label_estimates():
    assert estimate.umap_seconds(8000, None, 1.0) == estimate.UMAP_FIXED_S + 8000 * 500 * 2.6e-6
    assert estimate.umap_seconds(20_000, None, 2.0) == 2 * (estimate.UMAP_FIXED_S + 20_000 * 200 * 2.6e-6)
    assert estimate.label_seconds(100, 1.5) == 100 * estimate.LABEL_S_PER_TOPIC * 1.5
    assert [estimate.say(s) for s in (3, 42, 89, 91, 400)] == [
        "about 5 s", "about 40 s", "about 90 s", "about 2 min", "about 7 min"]


def test_pace_is_the_share_of_a_core(monkeypatch):
    monkeypatch.setattr(estimate.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(estimate.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert estimate.measure_pace() == 4.5
    monkeypatch.setattr(estimate.os, "getloadavg", lambda: (0.5, 0.0, 0.0))
    assert estimate.measure_pace() == 1.0  # a quiet machine runs at the reference's pace
