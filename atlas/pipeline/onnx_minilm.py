"""MiniLM on ONNX Runtime: the default CPU embedder for `minilm`.

The model is exported once from the packaged sentence-transformers weights (transformer,
mean pooling and normalisation in one graph) and kept in Atlas's cache under a name that
carries the Atlas version; nothing is downloaded. It stays fp32: it gives torch's vectors
to 1e-6, while int8 (dynamic quantisation) kept only 85-90% of the top-10 neighbours
(bench/embedders.py). Texts are tokenised with the model folder's own `tokenizer.json`,
sorted by token count and batched, so a batch pads to texts of about the same length.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import atlas

WINDOW = 256  # MiniLM's max_seq_length (sentence_bert_config.json)


def onnx_model_file(source: Path, cache: Path, *, quantized: bool = False) -> Path:
    """The exported model for `source` in `cache`, made on first use (a few seconds)."""
    kind = "int8" if quantized else "fp32"
    folder = cache / f"all-minilm-l6-v2-onnx-{kind}-{atlas.__version__}"
    path = folder / "model.onnx"
    if path.exists():
        return path
    tmp = cache / f".{folder.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with warnings.catch_warnings():  # the exporter's tracer warnings and the quantiser's advice
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            export_onnx(source, tmp / "fp32.onnx")
            if quantized:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(tmp / "fp32.onnx", tmp / "model.onnx", weight_type=QuantType.QInt8,
                                 per_channel=True)  # per-tensor scales cost 0.03 of cosine
                (tmp / "fp32.onnx").unlink()
            else:
                (tmp / "fp32.onnx").rename(tmp / "model.onnx")
        finally:
            logging.disable(logging.NOTSET)
    try:
        tmp.rename(folder)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def export_onnx(source: Path, out: Path) -> None:
    """Write `source`'s transformer + mean pooling + L2 normalisation as one ONNX graph."""
    import torch
    from transformers import AutoModel

    quiet_transformers()

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    model = Pooled(AutoModel.from_pretrained(str(source), local_files_only=True).eval())
    example = torch.ones((2, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(model, (example, example), str(out), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}})


@dataclass
class OnnxEmbedder:
    """MiniLM through ONNX Runtime."""

    session: object
    tokenizer: object
    name: str
    batch_size: int
    dim: int = 384
    truncated: int = field(default=0)

    @classmethod
    def load(cls, source: Path, model_file: Path, name: str, batch_size: int) -> OnnxEmbedder:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle threads sleep instead of spinning: spinning starves other work on a busy 2-core box.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        tokenizer.enable_truncation(WINDOW)
        tokenizer.no_padding()
        return cls(session, tokenizer, name, batch_size)

    def token_counts(self, texts: list[str]) -> np.ndarray:
        """Each text's tokens as `encode` feeds them to the model (special tokens in, window-cut)."""
        return np.array([len(e.ids) for e in self._encodings(texts)], np.int64)

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self._encodings(texts)
        self.truncated += sum(bool(e.overflowing) for e in encodings)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = order[start:start + self.batch_size]
            ids = np.zeros((len(batch), lengths[batch].max()), np.int64)
            for row, i in enumerate(batch):
                ids[row, : lengths[i]] = encodings[i].ids
            mask = (np.arange(ids.shape[1]) < lengths[batch, None]).astype(np.int64)
            out[batch] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out

    def _encodings(self, texts: list[str]) -> list:
        # Cut very long texts before tokenising; the tokenizer then truncates to the window.
        return self.tokenizer.encode_batch([t[: WINDOW * 12] for t in texts])


def quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
