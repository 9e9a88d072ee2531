"""Curation routes over HTTP semantics, in process (FastAPI TestClient), on a built map;
prints the markdown table of docs/BENCHMARKS.md.

    python bench/curate_api.py bench/out/pypi_all_noseed

Edits go to a scratch copy of the map (its files linked); the map itself is left as it was.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from curate import lasso_around, scratch_copy
from fastapi.testclient import TestClient

from atlas.server.app import create_app


def timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return times


def row(name: str, times: list[float]) -> str:
    """A markdown row: the route, p50 and max (only p50 for a single call)."""
    peak = f"{max(times):.0f} ms" if len(times) > 1 else ""
    return f"| {name} | {statistics.median(times):.0f} ms | {peak} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(scratch_copy(args.map, Path(tmp)))
        client = TestClient(app, base_url="http://127.0.0.1", headers={"X-Atlas-Token": app.state.secret})
        data = client.app.state.data
        lasso = min(100_000, len(data.x) // 2)
        polygon = lasso_around(np.asarray(data.x), np.asarray(data.y), lasso)
        remove_duplicates = {"action": "remove", "predicate": {"duplicates": {"keep": "longest"}}, "reason": "bench"}
        rows = [
            row("`GET /api/filter` (count + length and topic histograms)", timed(
                lambda: client.get("/api/filter", params={"where": "text_len < 20 and dup = any"}), 7)),
            row(f"`POST /api/select` (lasso of {lasso:,} points: count, topic breakdown, sample)", timed(
                lambda: client.post("/api/select", json={"steps": [{"op": "replace", "polygon": polygon}]}), 5)),
            row("`POST /api/edits` (remove duplicates)",
                timed(lambda: client.post("/api/edits", json=remove_duplicates), 1)),
            row("`GET /api/state`", timed(lambda: client.get("/api/state"), 5)),
        ]
        seq = client.get("/api/state").json()["edit_seq"]
        tiles = [(z, x, y) for z in (2, 3, 4) for x in range(1, 3) for y in range(1, 3)]
        rows.append(row("tiles after the edit (removed points dimmed), cold, zooms 2–4", [timed(
            lambda t=t: client.get(f"/tiles/{t[0]}/{t[1]}/{t[2]}.png", params={"v": seq}), 1)[0] for t in tiles]))
        rows.append(row("tiles with a filter (`text_len < 30`), cold", [timed(lambda t=t: client.get(
            f"/tiles/{t[0]}/{t[1]}/{t[2]}.png", params={"v": seq, "where": "text_len < 30"}), 1)[0] for t in tiles]))
        export = client.get("/api/export.parquet")
        rows.append(row(f"`GET /api/export.parquet` ({int(export.headers['x-atlas-rows']):,} rows)",
                        timed(lambda: client.get("/api/export.parquet"), 1)))
    print(f"`python {' '.join(sys.argv)}`: {len(data.x):,} records\n")
    print("| route | p50 | max |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
