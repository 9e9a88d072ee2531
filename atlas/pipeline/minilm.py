"""MiniLM run by Atlas itself: on ONNX Runtime (`minilm`) or torch (`minilm-torch`, fp16 on a GPU).

Texts are tokenised with the model folder's own `tokenizer.json` (cut to the 256-token
window), sorted by token count (`sorted_batches`) and batched, so a batch pads to texts of
about the same length; vectors come back in input order. The model is the transformer, mean
pooling over the real tokens and L2 normalisation (`pooled_model`): exported to ONNX once for
`minilm`, run as is for `minilm-torch`, where pooling and normalisation stay in float32 when
the transformer runs in fp16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WINDOW = 256  # MiniLM's max_seq_length (sentence_bert_config.json)
Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, attention_mask) -> float32 unit rows


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row numbers of each forward pass: rows sorted by length (stable), cut into `batch_size`."""
    order = np.argsort(lengths, kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


@dataclass
class MiniLMEmbedder:
    """MiniLM's tokenizer and a `forward` that runs the pooled model on one padded batch."""

    forward: Forward
    tokenizer: object
    name: str
    batch_size: int
    device: str = "cpu"
    dim: int = 384
    truncated: int = field(default=0)

    @classmethod
    def load(cls, source: Path, forward: Forward, name: str, batch_size: int, device: str = "cpu") -> MiniLMEmbedder:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        tokenizer.enable_truncation(WINDOW)
        tokenizer.no_padding()
        return cls(forward, tokenizer, name, batch_size, device)

    def token_counts(self, texts: list[str]) -> np.ndarray:
        """Each text's tokens as `encode` feeds them to the model (special tokens in, window-cut)."""
        return np.array([len(e.ids) for e in self._encodings(texts)], np.int64)

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self._encodings(texts)
        self.truncated += sum(bool(e.overflowing) for e in encodings)
        lengths = np.array([len(e.ids) for e in encodings], np.int64)
        out = np.empty((len(texts), self.dim), np.float32)
        for batch in sorted_batches(lengths, self.batch_size):
            ids = np.zeros((len(batch), lengths[batch].max()), np.int64)
            for row, i in enumerate(batch):
                ids[row, : lengths[i]] = encodings[i].ids
            mask = (np.arange(ids.shape[1]) < lengths[batch, None]).astype(np.int64)
            out[batch] = self.forward(ids, mask)
        return out

    def _encodings(self, texts: list[str]) -> list:
        # Cut very long texts before tokenising; the tokenizer then truncates to the window.
        return self.tokenizer.encode_batch([t[: WINDOW * 12] for t in texts])


def pooled_model(source: Path):
    """torch module: `source`'s transformer, mean pooling over the real tokens, L2 normalisation
    (pooling in float32 whatever the transformer's precision)."""
    import torch
    from transformers import AutoModel

    quiet_transformers()

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=1)

    return Pooled(AutoModel.from_pretrained(str(source), local_files_only=True).eval())


def torch_forward(source: Path, device: str, *, half: bool) -> Forward:
    """The pooled model on `device` ("cpu" or "cuda"), its weights and activations in fp16 if `half`."""
    import torch

    model = pooled_model(source).to(device)
    if half:
        model = model.half()

    def forward(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            vectors = model(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
        return vectors.cpu().numpy()

    return forward


def quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
