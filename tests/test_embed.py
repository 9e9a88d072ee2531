import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from atlas.errors import AtlasError
from atlas.pipeline.embed import (
    choose_embedder,
    load_embedder,
    minilm_path,
    static_model_path,
    vectors_from_column,
)
from atlas.settings import EmbedSettings, cache_dir

TEXTS = ["A library to parse JSON files in Python", "Python module for reading JSON documents",
         "Firmware for wireless network cards", "Fonts for Japanese text"]


@pytest.mark.parametrize("spec, dim", [("minilm", 384), ("minilm-torch", 384), ("static", 256)])
def test_embedders_give_unit_vectors_with_meaning(spec, dim):
    embedder = load_embedder(spec, EmbedSettings(), cache_dir())
    v = embedder.encode(TEXTS)
    assert v.shape == (4, dim) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[0, 3]


def test_the_static_embedder_loads_without_torch_or_transformers():
    """Their imports took 3 s of every build, relabel and search on a map the static embedder made."""
    static_model_path(cache_dir())  # distilling it, on a fresh cache, needs torch
    code = ("import sys; from atlas.pipeline.embed import load_embedder; from atlas.settings import EmbedSettings, "
            "cache_dir; load_embedder('static', EmbedSettings(), cache_dir()).encode(['a text']); "
            "print(sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("spec", ["minilm", "minilm-torch"])
def test_minilm_counts_truncated_texts(spec):
    embedder = load_embedder(spec, EmbedSettings(), cache_dir())
    embedder.encode(["word " * 400, "short", "word " * 300])
    assert embedder.truncated == 2


def test_onnx_minilm_gives_torch_vectors(small_table):
    """The exported graph (transformer + mean pooling + normalisation) is MiniLM itself: the
    vectors sentence-transformers makes of the same weights."""
    texts = small_table.column("description").to_pylist()[:40] + ["", "word " * 400]
    onnx = load_embedder("minilm", EmbedSettings(), cache_dir()).encode(texts)
    reference = load_embedder(str(minilm_path()), EmbedSettings(device="cpu"), cache_dir())
    assert type(reference).__name__ == "SentenceTransformerEmbedder"
    assert np.abs(onnx - reference.encode(texts)).max() < 1e-4


def test_auto_picks_by_size():
    settings = EmbedSettings(auto_minilm_limit=1000)
    assert choose_embedder("auto", 500, settings, None)[0] == "minilm"
    spec, why = choose_embedder("auto", 5000, settings, None)
    assert spec == "static" and "5,000 records" in why
    assert choose_embedder("minilm", 5000, settings, None)[0] == "minilm"


def test_unknown_embedder_path():
    with pytest.raises(AtlasError, match="neither minilm, minilm-torch, static, auto nor a local model folder"):
        load_embedder("/no/such/model", EmbedSettings(), cache_dir())


def test_vectors_from_column():
    col = pa.chunked_array([pa.array([[3.0, 4.0], [0.0, 2.0]])])
    assert np.allclose(vectors_from_column(col, "v"), [[0.6, 0.8], [0, 1]])
    with pytest.raises(AtlasError, match="lengths 1 to 2"):
        vectors_from_column(pa.chunked_array([pa.array([[1.0], [1.0, 2.0]])]), "v")
    with pytest.raises(AtlasError, match="not lists of numbers"):
        vectors_from_column(pa.chunked_array([pa.array(["a"])]), "v")
