"""Curation latencies on a built map: filter + count, lasso, remove duplicates, export, report.

    python bench/curate.py bench/out/pypi_all_noseed

Edits go to a scratch copy of the map's edit log; the map itself is left as it was.
"""

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from atlas.curation import Curation
from atlas.curation_report import report
from atlas.export import export

FILTERS = ["text_len < 20", "dup = removable", "topic = {topic}", "text_len between 40 and 80 and not dup = any",
           'search ~ "django"']


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def lasso_around(x: np.ndarray, y: np.ndarray, count: int, vertices: int = 64) -> list[list[float]]:
    """A polygon (circle) around the map's median point holding about `count` points."""
    cx, cy = np.median(x), np.median(y)
    radius = np.sort(np.hypot(x - cx, y - cy))[min(count, len(x) - 1)]
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    return np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1).tolist()


def scratch_copy(source: Path, folder: Path) -> Path:
    """A map in `folder` whose files are links to `source`'s; only the edit log (and tiles) are new."""
    scratch = folder / "map"
    scratch.mkdir()
    for item in source.iterdir():
        if item.name not in ("edits.sqlite", "tiles"):
            (scratch / item.name).symlink_to(item.resolve())
    return scratch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = scratch_copy(args.map, Path(tmp))
        opened, cur = timed(lambda: Curation(scratch))
        print(f"open: {opened:.2f} s for {len(cur):,} records")
        topic = int(cur.topics.column("topic_id")[0].as_py())
        for text in FILTERS:
            text = text.format(topic=topic)
            first, _ = timed(lambda t=text: int(cur.kept(t).sum()))
            median, count = timed(lambda t=text: int(cur.kept(t).sum()), repeat=7)
            print(f"filter + count `{text}`: {median * 1000:.0f} ms (first {first * 1000:.0f} ms), {count:,} records")
        x, y = (cur.frame.points.column(c).to_numpy() for c in ("x", "y"))
        polygon = lasso_around(x, y, 100_000)
        median, mask = timed(lambda: cur.resolve({"select": [{"op": "replace", "polygon": polygon}]}), repeat=5)
        print(f"lasso (64 vertices): {median * 1000:.0f} ms, {int(mask.sum()):,} points")
        seconds, entry = timed(lambda: cur.edit("remove", {"duplicates": {"keep": "longest"}}, reason="bench"))
        print(f"remove duplicates (one edit): {seconds:.2f} s, {entry.count:,} records removed")
        seconds, _ = timed(lambda: cur.undo())
        print(f"undo: {seconds:.2f} s")
        cur.edit("remove", {"duplicates": {"keep": "longest"}}, reason="bench")
        seconds, rows = timed(lambda: export(cur, Path(tmp) / "clean.parquet"))
        size = (Path(tmp) / "clean.parquet").stat().st_size / 2**20
        print(f"export of the kept set: {seconds:.1f} s, {rows:,} rows, {size:.0f} MiB")
        seconds, quota = timed(lambda: cur.quota(level=0, cap=20_000))
        print(f"quota preview (cap 20,000 per coarse topic): {seconds:.2f} s, {int(quota.remove.sum()):,} to remove")
        seconds, _ = timed(lambda: report(cur, Path(tmp) / "report.html"))
        print(f"report: {seconds:.1f} s")
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
