"""Curation routes over HTTP semantics, in process (FastAPI TestClient), on a built map.

    python bench/curate_api.py bench/out/pypi_all_noseed

Edits go to a scratch copy of the map (its files linked); the map itself is left as it was.
"""

import argparse
import statistics
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


def report(name: str, times: list[float]) -> None:
    print(f"{name}: p50 {statistics.median(times):.0f} ms, max {max(times):.0f} ms ({len(times)} calls)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        client = TestClient(create_app(scratch_copy(args.map, Path(tmp))))
        data = client.app.state.data
        polygon = lasso_around(np.asarray(data.x), np.asarray(data.y), 100_000)
        report("GET /api/filter (count + histograms)", timed(
            lambda: client.get("/api/filter", params={"where": "text_len < 20 and dup = any"}), 7))
        report("POST /api/select (lasso, 100k points)", timed(
            lambda: client.post("/api/select", json={"steps": [{"op": "replace", "polygon": polygon}]}), 5))
        remove_duplicates = {"action": "remove", "predicate": {"duplicates": {"keep": "longest"}}, "reason": "bench"}
        report("POST /api/edits (remove duplicates)",
               timed(lambda: client.post("/api/edits", json=remove_duplicates), 1))
        report("GET /api/state", timed(lambda: client.get("/api/state"), 5))
        seq = client.get("/api/state").json()["edit_seq"]
        tiles = [(z, x, y) for z in (2, 3, 4) for x in range(1, 3) for y in range(1, 3)]
        report("dimmed tiles after the edit, cold", [timed(lambda t=t: client.get(
            f"/tiles/{t[0]}/{t[1]}/{t[2]}.png", params={"v": seq}), 1)[0] for t in tiles])
        report("filtered tiles, cold", [timed(lambda t=t: client.get(
            f"/tiles/{t[0]}/{t[1]}/{t[2]}.png", params={"v": seq, "where": "text_len < 30"}), 1)[0] for t in tiles])
        report("GET /api/export.parquet", timed(lambda: client.get("/api/export.parquet"), 1))


if __name__ == "__main__":
    main()
