"""Map tiles: datashader aggregates the points of one tile, shaded by coarse topic.

Points are sorted by Morton code (see atlas.spatial), so the points of tile (z, x, y) are
one contiguous run of rows, found by two binary searches: a deep-zoom tile reads only its
own points. Rendered tiles are kept in memory (LRU); the plain map's also on disk (DiskCache:
an LRU with a size cap, holding only the current map version; blank tiles are not written).

A render may take an `active` mask (points order): points outside it (removed, filtered out)
are drawn dimmed under the others. Without one, the tile is drawn as before, in one pass.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from atlas.palette import DIMMED
from atlas.spatial import BITS, spread_bits

TILE = 256
MAX_ZOOM = BITS
DISK_BYTES = 256 << 20


class DiskCache:
    """Rendered tiles of one map version on disk (`root/version/z/x/y.png`), least recently
    used first out once they pass `max_bytes`. Opening it deletes other versions' tiles and
    leftover temporary files; each write goes through its own temporary name, so parallel
    renders of one tile never share a file."""

    def __init__(self, root: Path, version: str, max_bytes: int = DISK_BYTES):
        self.dir, self.max_bytes, self.size = root / version, max_bytes, 0
        self._files: OrderedDict[Path, int] = OrderedDict()
        self._lock = threading.Lock()
        for old in root.iterdir() if root.is_dir() else ():
            if old != self.dir:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        for leftover in self.dir.rglob("*.tmp"):
            leftover.unlink(missing_ok=True)
        for path in sorted(self.dir.rglob("*.png"), key=lambda p: p.stat().st_mtime):
            self._add(path, path.stat().st_size)

    def get(self, z: int, x: int, y: int) -> bytes | None:
        path = self._path(z, x, y)
        try:
            png = path.read_bytes()
        except OSError:
            return None
        self._add(path, len(png))
        return png

    def put(self, z: int, x: int, y: int, png: bytes) -> None:
        path = self._path(z, x, y)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(png)
        os.replace(tmp, path)
        self._add(path, len(png))

    def _path(self, z: int, x: int, y: int) -> Path:
        return self.dir / str(z) / str(x) / f"{y}.png"

    def _add(self, path: Path, size: int) -> None:
        """Mark `path` most recently used, then drop the least recent files past the cap."""
        with self._lock:
            self.size += size - self._files.pop(path, 0)
            self._files[path] = size
            while self.size > self.max_bytes and self._files:
                old, old_size = self._files.popitem(last=False)
                old.unlink(missing_ok=True)
                self.size -= old_size


class TileRenderer:
    def __init__(self, x: np.ndarray, y: np.ndarray, topic: np.ndarray, codes: np.ndarray,
                 square: tuple[float, float, float], colors: list[str], disk: DiskCache | None = None,
                 memory_tiles: int = 4096):
        import pandas as pd

        self.frame = pd.DataFrame({"x": x, "y": y, "topic": pd.Categorical.from_codes(
            topic, categories=[str(i) for i in range(len(colors))])})
        self.codes = codes
        self.square = square
        self.color_key = {str(i): c for i, c in enumerate(colors)}
        self.disk = disk
        self.memory: OrderedDict[tuple, bytes] = OrderedDict()
        self.memory_tiles = memory_tiles
        self._memory_lock = threading.Lock()
        self.peak = _peak_density(x, y, square)
        # Every render runs on one thread: datashader's numba kernels already use every core,
        # and 16 tiles rendered from 16 server threads took 3 s each instead of 40 ms.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tiles")
        self.worker.submit(self._warm_up).result()

    def rows(self, z: int, tx: int, ty: int) -> tuple[int, int]:
        """The run of rows inside tile (z, tx, ty); ty counts down from the top of the world."""
        cy = (1 << z) - 1 - ty
        prefix = int(spread_bits(np.array([tx]))[0] | (spread_bits(np.array([cy]))[0] << np.uint64(1)))
        shift = 2 * (BITS - z)
        lo, hi = prefix << shift, (prefix + 1) << shift
        return int(np.searchsorted(self.codes, lo)), int(np.searchsorted(self.codes, hi))

    def tile(self, z: int, tx: int, ty: int, cache_key: str, active: np.ndarray | None = None) -> bytes:
        """PNG bytes of one tile; `cache_key` names everything that changes the picture (the map
        build, the edits, the filter). Only tiles without an `active` mask go to disk (the map
        build's folder of the DiskCache): edits and filters come and go."""
        key = (cache_key, z, tx, ty)
        with self._memory_lock:
            if key in self.memory:
                self.memory.move_to_end(key)
                return self.memory[key]
        disk = self.disk if active is None else None
        png = disk.get(z, tx, ty) if disk is not None else None
        if png is None:
            png = self.render(z, tx, ty, active)
            if disk is not None and png != _blank():
                disk.put(z, tx, ty, png)
        with self._memory_lock:
            self.memory[key] = png
            if len(self.memory) > self.memory_tiles:
                self.memory.popitem(last=False)
        return png

    def _warm_up(self) -> None:
        """Compile datashader's numba kernels (aggregate, shade, spread: ~5 s) before the
        first page load needs them, those of the dimmed layer (filters, removals) too."""
        import datashader.transfer_functions as tf

        self._render(0, 0, 0)
        self._render(0, 0, 0, np.arange(len(self.frame)) % 2 == 0)
        canvas_image = tf.Image(np.zeros((4, 4), np.uint32), dims=["y", "x"])
        tf.spread(canvas_image, px=1, shape="circle")

    def render(self, z: int, tx: int, ty: int, active: np.ndarray | None = None) -> bytes:
        return self.worker.submit(self._render, z, tx, ty, active).result()

    def _render(self, z: int, tx: int, ty: int, active: np.ndarray | None = None) -> bytes:
        import datashader as ds
        import datashader.transfer_functions as tf

        lo, hi = self.rows(z, tx, ty)
        frame = self.frame.iloc[lo:hi]
        if len(frame) == 0:
            return _blank()
        x0, y0, size = self.square
        step = size / (1 << z)
        left, top = x0 + tx * step, y0 + size - ty * step
        canvas = ds.Canvas(plot_width=TILE, plot_height=TILE, x_range=(left, left + step),
                           y_range=(top - step, top))
        # One span per zoom level keeps brightness continuous across tile edges.
        span = (1, max(2.0, self.peak / 4**z))
        shown = None if active is None or active[lo:hi].all() else active[lo:hi]
        agg = canvas.points(frame if shown is None else frame[shown], "x", "y", agg=ds.count_cat("topic"))
        image = tf.shade(agg, color_key=self.color_key, how="log", span=span, min_alpha=170)
        if shown is not None:
            dimmed = tf.shade(canvas.points(frame[~shown], "x", "y"), cmap=[DIMMED, DIMMED], how="log",
                              span=span, min_alpha=60, alpha=110)
            image = tf.stack(dimmed, image)
        # Every point is at least a 3-pixel dot; sparse tiles spread further, up to 7 pixels.
        image = tf.dynspread(tf.spread(image, px=1, shape="circle"), threshold=0.8, max_px=2, shape="circle")
        buffer = io.BytesIO()
        image.to_pil().save(buffer, format="PNG", optimize=False)
        return buffer.getvalue()


def _peak_density(x: np.ndarray, y: np.ndarray, square: tuple[float, float, float]) -> float:
    """Points in the densest pixels (99.9th percentile) of the zoom-0 tile."""
    x0, y0, size = square
    counts, _, _ = np.histogram2d(x, y, bins=TILE, range=[[x0, x0 + size], [y0, y0 + size]])
    filled = counts[counts > 0]
    return float(np.percentile(filled, 99.9)) if len(filled) else 1.0


@functools.cache
def _blank() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (TILE, TILE), (0, 0, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()
