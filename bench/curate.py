"""Curation latencies on a built map: filter + count, lasso, remove duplicates, export, report,
and the run's peak RSS, as the markdown table of docs/BENCHMARKS.md.

    python bench/curate.py bench/out/pypi_all_noseed

The library as the CLI calls it (the Curation facade). Edits go to a scratch copy of the map
(its files linked, a fresh edit log); the map itself is left as it was.
"""

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from atlas.curation import Curation

FILTERS = ["text_len < 20", "dup = removable", "topic = {topic}", "text_len between 40 and 80 and not dup = any",
           'search ~ "django"']
QUOTA_CAP = 20_000  # per coarse topic; a twentieth of the records on smaller maps


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
    rows = []  # (operation, time, result, target)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = scratch_copy(args.map, Path(tmp))
        opened, cur = timed(lambda: Curation(scratch))
        rows.append(("open the map for curation", f"{opened:.2f} s", f"{len(cur):,} records", ""))
        topic = int(cur.topics.column("topic_id")[0].as_py())
        for text in FILTERS:
            text = text.format(topic=topic)
            first, _ = timed(lambda t=text: int(cur.kept(t).sum()))
            median, count = timed(lambda t=text: int(cur.kept(t).sum()), repeat=7)
            rows.append((f"filter + count `{text}`", f"{ms(median)} (first {ms(first)})", f"{count:,}", "≤ 100 ms"))
        x, y = (cur.frame.points.column(c).to_numpy() for c in ("x", "y"))
        polygon = lasso_around(x, y, min(100_000, len(x) // 2))
        median, mask = timed(lambda: cur.resolve({"select": [{"op": "replace", "polygon": polygon}]}), repeat=5)
        rows.append(("lasso, 64-vertex polygon", ms(median), f"{int(mask.sum()):,} points", "≤ 200 ms"))
        seconds, entry = timed(lambda: cur.edit("remove", {"duplicates": {"keep": "longest"}}, reason="bench"))
        rows.append(("remove duplicates (`keep longest`, one edit)", f"{seconds:.2f} s", f"{entry.count:,} removed",
                     "≤ 2 s"))
        seconds, _ = timed(lambda: cur.undo())
        rows.append(("undo", ms(seconds), "", ""))
        cur.edit("remove", {"duplicates": {"keep": "longest"}}, reason="bench")
        seconds, count = timed(lambda: cur.export(Path(tmp) / "clean.parquet"))
        size = (Path(tmp) / "clean.parquet").stat().st_size / 2**20
        rows.append(("export of the kept set", f"{seconds:.1f} s", f"{count:,} rows, {size:.0f} MiB", "≤ 30 s"))
        cap = min(QUOTA_CAP, len(cur) // 20)
        seconds, quota = timed(lambda: cur.quota(level=0, cap=cap))
        rows.append((f"quota preview, cap {cap:,} per coarse topic", f"{seconds:.2f} s",
                     f"{int(quota.remove.sum()):,} would go", ""))
        seconds, _ = timed(lambda: cur.report(Path(tmp) / "report.html"))
        rows.append(("HTML report (two map images, Bokeh charts)", f"{seconds:.1f} s", "", ""))
        shutil.rmtree(scratch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rows.append(("peak RSS of the whole run", f"{peak:.2f} GiB", "", ""))
    print(f"`python {' '.join(sys.argv)}`: {len(cur):,} records\n")
    print("| operation | time | result | target |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.01 else f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    main()
