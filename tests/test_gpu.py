"""The GPU path's logic, on the CPU: MiniLM under torch (the code a GPU runs, in fp32 and fp16),
and the choice of device and UMAP/HDBSCAN backend with a GPU and cuML injected."""

import sys
import types

import numpy as np
import pytest

from atlas.errors import AtlasError
from atlas.pipeline.embed import batch_size, choose_embedder, load_embedder, minilm_path, runs_on
from atlas.pipeline.gpu import device_label, layout_backend, torch_device
from atlas.pipeline.minilm import sorted_batches, torch_forward
from atlas.settings import EmbedSettings, cache_dir

GPU = "NVIDIA H100 80GB HBM3"


def test_sorted_batches_sort_by_length_stably():
    batches = sorted_batches(np.array([5, 1, 3, 1, 4]), 2)
    assert [b.tolist() for b in batches] == [[1, 3], [2, 4], [0]]


@pytest.fixture(scope="module")
def texts(small_table):
    """Texts whose length order is far from their input order: long descriptions, short names, an empty one."""
    descriptions = small_table.column("description").to_pylist()[:24]
    names = small_table.column("package").to_pylist()[:24]
    return [t for pair in zip(descriptions, names) for t in pair] + ["", "word " * 400]


def test_torch_minilm_on_cpu_gives_onnx_vectors_in_input_order(texts):
    """The GPU path's code (length-sorted batches through the pooled torch model) with the
    device forced to the CPU, in fp32: ONNX MiniLM's vectors, row for row."""
    torch_minilm = load_embedder("minilm-torch", EmbedSettings(device="cpu", batch_size=8), cache_dir())
    assert torch_minilm.device == "cpu" and torch_minilm.batch_size == 8
    vectors = torch_minilm.encode(texts)
    onnx = load_embedder("minilm", EmbedSettings(), cache_dir()).encode(texts)
    assert vectors.shape == (50, 384) and vectors.dtype == np.float32
    assert np.abs(vectors - onnx).max() < 1e-5
    alone = np.stack([torch_minilm.encode([t])[0] for t in texts[:6]])  # one text per pass: no sorting at all
    assert np.abs(vectors[:6] - alone).max() < 1e-5


def test_fp16_forward_stays_close_and_unit_length(texts):
    """fp16 weights and activations (what a GPU runs; torch runs fp16 on a CPU too, slowly),
    pooled and normalised in float32: unit rows within 1e-3 of fp32's, and not the same numbers."""
    embedder = load_embedder("minilm-torch", EmbedSettings(device="cpu"), cache_dir())
    fp32 = embedder.encode(texts)
    embedder.forward = torch_forward(minilm_path(), "cpu", half=True)
    fp16 = embedder.encode(texts)
    assert fp16.dtype == np.float32
    assert np.allclose(np.linalg.norm(fp16, axis=1), 1, atol=1e-5)
    assert 0 < np.abs(fp16 - fp32).max() < 1e-2
    assert (fp16 * fp32).sum(axis=1).min() > 0.999


def test_auto_takes_minilm_on_the_gpu():
    settings = EmbedSettings(auto_minilm_limit=1000)
    spec, why = choose_embedder("auto", 886_323, settings, GPU)
    assert (spec, why) == ("minilm-torch", f"a GPU ({GPU}): MiniLM on it in fp16")
    assert choose_embedder("auto", 886_323, settings, None)[0] == "static"
    cpu_only = EmbedSettings(auto_minilm_limit=1000, device="cpu")
    assert choose_embedder("auto", 886_323, cpu_only, GPU)[0] == "static"
    assert choose_embedder("minilm", 886_323, settings, GPU)[0] == "minilm"


def test_where_each_embedder_runs():
    assert runs_on("minilm-torch", EmbedSettings(), GPU) == "cuda"
    assert runs_on("/some/model", EmbedSettings(), GPU) == "cuda"
    assert runs_on("minilm-torch", EmbedSettings(device="cpu"), GPU) == "cpu"
    assert runs_on("minilm-torch", EmbedSettings(), None) == "cpu"
    assert [runs_on(spec, EmbedSettings(), GPU) for spec in ("minilm", "static")] == ["cpu", "cpu"]
    assert (batch_size(EmbedSettings(), "cuda"), batch_size(EmbedSettings(), "cpu")) == (512, 16)
    assert device_label("cuda", GPU) == f"cuda ({GPU}, fp16)" and device_label("cpu", None) == "cpu"
    with pytest.raises(AtlasError, match="device cuda was asked for, but torch sees no CUDA GPU here"):
        torch_device("cuda", None)


@pytest.fixture
def fake_cuml(monkeypatch):
    """An importable `cuml` (for the choice only: nothing runs it)."""
    monkeypatch.setitem(sys.modules, "cuml", types.ModuleType("cuml"))


def test_cuml_runs_layout_when_it_imports_and_there_is_a_gpu(fake_cuml):
    assert layout_backend(None, GPU) == "cuml"
    assert layout_backend(True, GPU) == "cuml"
    assert layout_backend(None, None) == "cpu"
    assert layout_backend(False, GPU) == "cpu"
    with pytest.raises(AtlasError, match="--cuml needs a CUDA GPU; drop --cuml"):
        layout_backend(True, None)


def test_no_cuml_means_the_cpu_backend(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuml", None)  # `import cuml` raises ImportError
    assert layout_backend(None, GPU) == "cpu"
    with pytest.raises(AtlasError, match=r"--cuml needs RAPIDS cuML \(https://docs.rapids.ai/install\)"):
        layout_backend(True, GPU)


def test_manifest_says_what_ran(small_map):
    manifest = small_map.manifest()
    assert manifest["embedder"]["device"] == "cpu"
    assert manifest["stages"]["project"]["params"]["backend"] == "cpu"
    assert manifest["stages"]["cluster"]["params"]["backend"] == "cpu"
    assert manifest["settings"]["cuml"] is None and manifest["settings"]["embed"]["device"] is None
