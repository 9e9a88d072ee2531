"""Tile latency, cold and cached, through the HTTP app (in process).

    python bench/tiles.py maps/debian-packages --tiles 300

Cold: a fresh app with its disk tile cache removed, each tile requested once.
Cached: the same tiles again (served from memory). Tiles: every tile of zooms 0-2,
then tiles under randomly chosen points at zooms 3-12.
"""

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from atlas.mapdir import MapDir
from atlas.server.app import create_app


def tile_list(client: TestClient, count: int, seed: int = 0) -> list[tuple[int, int, int]]:
    info = client.get("/api/map").json()
    x0, y0, size = info["world"]
    tiles = [(z, x, y) for z in range(3) for x in range(1 << z) for y in range(1 << z)]
    box = dict(x0=x0, y0=y0, x1=x0 + size, y1=y0 + size, limit=count)
    points = client.get("/api/points", params=box).json()["points"]
    rng = np.random.default_rng(seed)
    for p in rng.permutation(points)[: count - len(tiles)]:
        z = int(rng.integers(3, 13))
        n = 1 << z
        tx = min(n - 1, int((p["x"] - x0) / size * n))
        ty = min(n - 1, int((y0 + size - p["y"]) / size * n))
        tiles.append((z, tx, ty))
    return tiles


def timed(client: TestClient, tiles) -> np.ndarray:
    ms = []
    for z, x, y in tiles:
        start = time.perf_counter()
        response = client.get(f"/tiles/{z}/{x}/{y}.png")
        ms.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return np.array(ms)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    parser.add_argument("--tiles", type=int, default=300)
    args = parser.parse_args()
    shutil.rmtree(MapDir(args.map).tiles_path, ignore_errors=True)
    start = time.perf_counter()
    client = TestClient(create_app(args.map))
    startup = time.perf_counter() - start
    tiles = tile_list(client, args.tiles)
    client.get("/tiles/0/0/0.png")  # first call pays for datashader's JIT; not a tile latency
    shutil.rmtree(MapDir(args.map).tiles_path, ignore_errors=True)
    client.app.state.tiles.memory.clear()
    cold = timed(client, tiles)
    cached = timed(client, tiles)
    records = client.get("/api/map").json()["records"]
    print(f"{args.map}: {records:,} points, {len(tiles)} tiles, server start {startup:.1f} s")
    for name, ms in (("cold", cold), ("cached", cached)):
        print(f"  {name:<7} p50 {np.percentile(ms, 50):6.1f} ms  p95 {np.percentile(ms, 95):6.1f} ms  "
              f"max {ms.max():6.1f} ms")


if __name__ == "__main__":
    main()
