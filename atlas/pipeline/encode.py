"""Embedding as a batch function (atlas.pipeline.engine): one embedder per worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from atlas.pipeline.embed import load_embedder
from atlas.settings import EmbedSettings


class EncodeTexts:
    """Loads the embedder once; each call embeds a batch's texts (its first column)."""

    def __init__(self, spec: str, settings: EmbedSettings, cache: Path):
        self.embedder = load_embedder(spec, settings, cache)

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        """`vector`: float32 unit rows; `truncated`: how many of the batch's texts were longer than
        the model's window, counted on the batch's first row (zeros elsewhere), so sums add up."""
        before = self.embedder.truncated
        vectors = self.embedder.encode(batch.column(0).to_pylist())
        truncated = np.zeros(len(vectors), np.int64)
        truncated[:1] = self.embedder.truncated - before
        return {"vector": vectors, "truncated": truncated}
