"""Whether a build uses a GPU: torch embedders on CUDA, RAPIDS cuML for UMAP and HDBSCAN.

Each is used when present unless turned off (`EmbedSettings.device = "cpu"`, `BuildSettings.cuml
= False`); the manifest records what ran. torch is imported to ask only where an NVIDIA driver
is installed, so a build on a machine without one does not pay for the import.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from atlas.errors import AtlasError

DRIVER_FILES = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg")  # Linux, gVisor, WSL2
CUML_INSTALL = "RAPIDS cuML (https://docs.rapids.ai/install)"


@functools.cache
def gpu_name() -> str | None:
    """The CUDA GPU torch would use ('NVIDIA H100 80GB HBM3'), or None."""
    if importlib.util.find_spec("torch") is None or not any(Path(f).exists() for f in DRIVER_FILES):
        return None
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def torch_device(wanted: str | None, gpu: str | None) -> str:
    """"cuda" or "cpu": where a torch embedder runs. `wanted` None: the GPU when there is one."""
    if wanted == "cuda" and gpu is None:
        raise AtlasError("device cuda was asked for, but torch sees no CUDA GPU here; "
                         "leave the device unset (or cpu) to embed on the CPU")
    return "cuda" if gpu is not None and wanted != "cpu" else "cpu"


def device_label(device: str, gpu: str | None) -> str:
    """For the manifest: "cpu", or "cuda (NVIDIA H100 80GB HBM3, fp16)"."""
    return f"cuda ({gpu}, fp16)" if device == "cuda" else "cpu"


def layout_backend(wanted: bool | None, gpu: str | None) -> str:
    """"cuml" (RAPIDS cuML runs UMAP and HDBSCAN on the GPU) or "cpu" (umap-learn, hdbscan).
    `wanted` None: cuml when it imports and there is a GPU; False: cpu; True: cuml, or an
    error naming what is missing."""
    if wanted is False:
        return "cpu"
    missing = "a CUDA GPU" if gpu is None else None
    if missing is None:
        try:
            import cuml  # noqa: F401
        except ImportError:
            missing = CUML_INSTALL
    if missing is None:
        return "cuml"
    if wanted:
        raise AtlasError(f"--cuml needs {missing}; drop --cuml to run UMAP and HDBSCAN on the CPU")
    return "cpu"
