"""MiniLM on ONNX Runtime: the `forward` of the default CPU embedder, `minilm` (atlas.pipeline.minilm).

The model is exported once from the packaged sentence-transformers weights (transformer,
mean pooling and normalisation in one graph) and kept in Atlas's cache under a name that
carries the Atlas version; nothing is downloaded. It stays fp32: it gives torch's vectors
to 1e-6, while int8 (dynamic quantisation) kept only 85-90% of the top-10 neighbours
(bench/embedders.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path

import atlas
from atlas.pipeline.minilm import Forward, pooled_model


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

    model = pooled_model(source)
    example = torch.ones((2, 8), dtype=torch.int64)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(model, (example, example), str(out), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}})


def onnx_forward(model_file: Path) -> Forward:
    """The exported model on ONNX Runtime's CPU provider, using every core."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle threads sleep instead of spinning: spinning starves other work on a busy 2-core box.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    return lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
