"""Latency of `atlas serve` over HTTP, and its memory: tiles, box query, record with
neighbours, keyword and semantic search, and page load in headless Chromium.

    python bench/serve.py maps/debian-packages [bench/out/pypi_all_static ...]
    python bench/serve.py MAP --code ../main-checkout --code .   # before and after, side by side

Per map (and per source tree given with --code), starts a real server (the map's disk tile
cache emptied first). "cold" is each request's first time; "cached" is the same requests
again. Prints the markdown table of docs/BENCHMARKS.md, one column per map and tree.
"""

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from atlas.mapdir import MapDir


def get(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    return (time.perf_counter() - start) * 1000, body


def run(base: str, paths: list[str]) -> np.ndarray:
    return np.array([get(base + p)[0] for p in paths])


def page_load(url: str) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_function("() => typeof page !== 'undefined' && page.info && !page.loading"
                               " && document.querySelectorAll('.leaflet-tile-loaded').length > 0"
                               " && document.querySelectorAll('.topic-label').length > 0", polling=20)
        elapsed = (time.perf_counter() - start) * 1000
        browser.close()
    return elapsed


def memory_mib(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


TARGETS = {"tile, cold": "p95 ≤ 50 at 886k", "box query": "≤ 50", "record + 10 neighbours": "≤ 50",
           "keyword search (FTS5)": "≤ 100", "semantic search": "≤ 150", "page load to full map, cold": "≤ 2,000"}


FILTER = "text_len < 100"  # any filter that leaves some points dimmed


def measure(map_dir: Path, n: int, code: Path | None = None) -> tuple[str, dict[str, str]]:
    """One map's column, served from the source tree `code` (None: the installed atlas):
    (header, cell per row name)."""
    shutil.rmtree(MapDir(map_dir).tiles_path, ignore_errors=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    env = os.environ if code is None else {**os.environ, "PYTHONPATH": str(code.resolve())}
    server = subprocess.Popen([sys.executable, "-m", "atlas", "serve", str(map_dir.resolve()), "--port", str(port)],
                              stdout=sys.stderr, env=env, cwd=code)  # its log is not part of the table
    while True:
        try:
            info = json.loads(get(base + "/api/map")[1])
            break
        except OSError:
            time.sleep(0.1)
    startup = time.perf_counter() - start
    rng = random.Random(0)
    x0, y0, size = info["world"]
    points = json.loads(get(base + f"/api/points?x0={x0}&y0={y0}&x1={x0 + size}&y1={y0 + size}&limit=5000")[1])[
        "points"]
    cells = {}
    try:
        cells["page load to full map, cold"] = f"{page_load(base + '/'):.0f}"
        where = urllib.parse.quote(FILTER)
        for row, z in (("first filtered tile, fresh server", 0), ("second filtered tile", 1)):
            cells[row] = f"{get(base + f'/tiles/{z}/0/0.png?where={where}')[0]:,.0f}"
        # The server loads the query embedder in the background a few seconds after start;
        # wait for it here so that it does not share the CPU with the latencies below.
        first_semantic = get(base + "/api/search?q=warm+up&mode=semantic")[0]
        tiles = [f"/tiles/{z}/{x}/{y}.png" for z in range(3) for x in range(1 << z) for y in range(1 << z)]
        for p in rng.sample(points, n - len(tiles)):  # with n = 200: 21 tiles of zooms 0-2, 179 points
            z = rng.randrange(3, 13)
            side = 1 << z
            tiles.append(f"/tiles/{z}/{min(side - 1, int((p['x'] - x0) / size * side))}/"
                         f"{min(side - 1, int((y0 + size - p['y']) / size * side))}.png")
        cells["tile, cold"] = percentiles(run(base, tiles))
        boxes = []
        for p in rng.sample(points, n):
            half = size / 2 ** rng.randrange(2, 10)
            boxes.append(f"/api/points?x0={p['x'] - half}&y0={p['y'] - half * 0.6}&x1={p['x'] + half}"
                         f"&y1={p['y'] + half * 0.6}&limit=3000&sample=false")
        cells["box query"] = percentiles(run(base, boxes))
        ids = [urllib.parse.quote(p["id"], safe="") for p in rng.sample(points, n)]
        cells["record + 10 neighbours"] = percentiles(run(base, [f"/api/records/{i}" for i in ids]))
        words = [w for p in rng.sample(points, min(len(points), n * 3)) for w in p["snippet"].split()[:3]
                 if len(w) > 4 and w.isalpha()][:n]
        cells["keyword search (FTS5)"] = percentiles(
            run(base, [f"/api/search?q={urllib.parse.quote(w)}&limit=50" for w in words]))
        texts = [" ".join(p["snippet"].split()[:6]) for p in points if p["snippet"].strip()]
        queries = [urllib.parse.quote(t) for t in rng.sample(texts, 50)]
        cells["semantic search"] = percentiles(
            run(base, [f"/api/search?q={q}&mode=semantic&limit=50" for q in queries]))
        cells["tile, cached"] = percentiles(run(base, tiles))
        cells["page load, cached tiles"] = f"{page_load(base + '/'):.0f}"
        rss, peak = memory_mib(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    cells["server RSS (peak)"] = f"{rss:,.0f} MiB ({peak:,.0f})"
    cells["server start (until it answers)"] = f"{startup:.1f} s"
    cells["first semantic query (waits for the embedder to load)"] = f"{first_semantic:,.0f}"
    tree = f", {code.resolve().name}" if code else ""
    header = f"{map_dir.name} ({info['records']:,}, {info['embedder']}){tree} p50 / p95 ms"
    return header, cells


def percentiles(ms: np.ndarray) -> str:
    return f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 95):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("maps", type=Path, nargs="+", help="one column each")
    parser.add_argument("--n", type=int, default=200, help="requests per kind")
    parser.add_argument("--code", type=Path, action="append",
                        help="a source tree to serve from (e.g. main, unpacked by git archive); repeat to compare")
    args = parser.parse_args()
    columns = [measure(m, args.n, code) for m in args.maps for code in args.code or [None]]
    names = ["tile, cold", "tile, cached", "first filtered tile, fresh server", "second filtered tile", "box query",
             "record + 10 neighbours", "keyword search (FTS5)", "semantic search", "page load to full map, cold",
             "page load, cached tiles", "server RSS (peak)",
             "server start (until it answers)", "first semantic query (waits for the embedder to load)"]
    print("| request | " + " | ".join(h for h, _ in columns) + " | target |")
    print("|---|" + "---|" * (len(columns) + 1))
    for name in names:
        print(f"| {name} | " + " | ".join(c[name] for _, c in columns) + f" | {TARGETS.get(name, '')} |")


if __name__ == "__main__":
    main()
