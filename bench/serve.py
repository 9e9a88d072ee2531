"""Latency of `atlas serve` over HTTP, and its memory: tiles, box query, record with
neighbours, keyword and semantic search, and page load in headless Chromium.

    python bench/serve.py maps/debian-packages

Starts a real server (disk tile cache emptied first). "cold" is each request's first
time; "cached" is the same requests again. Prints a markdown table.
"""

import argparse
import json
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
        page.wait_for_function("typeof state !== 'undefined' && state.info && !state.loading"
                               " && document.querySelectorAll('.leaflet-tile-loaded').length > 0"
                               " && document.querySelectorAll('.topic-label').length > 0", polling=20)
        elapsed = (time.perf_counter() - start) * 1000
        browser.close()
    return elapsed


def memory_mib(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("map", type=Path)
    parser.add_argument("--n", type=int, default=200, help="requests per kind")
    args = parser.parse_args()
    shutil.rmtree(MapDir(args.map).tiles_path, ignore_errors=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "atlas", "serve", str(args.map), "--port", str(port)])
    while True:
        try:
            info = json.loads(get(base + "/api/map")[1])
            break
        except OSError:
            time.sleep(0.1)
    startup = time.perf_counter() - start
    rng = random.Random(0)
    x0, y0, size = info["world"]
    sample = json.loads(get(base + f"/api/points?x0={x0}&y0={y0}&x1={x0 + size}&y1={y0 + size}&limit=5000")[1])
    points = sample["points"]
    rows = []
    try:
        rows.append(("page load to full map", np.array([page_load(base + "/")])))
        # The server loads the query embedder in the background a few seconds after start;
        # wait for it here so that it does not share the CPU with the latencies below.
        first_semantic = get(base + "/api/search?q=warm+up&mode=semantic")[0]
        tiles = [f"/tiles/{z}/{x}/{y}.png" for z in range(3) for x in range(1 << z) for y in range(1 << z)]
        for p in rng.sample(points, args.n - len(tiles)):
            z = rng.randrange(3, 13)
            n = 1 << z
            tiles.append(f"/tiles/{z}/{min(n - 1, int((p['x'] - x0) / size * n))}/"
                         f"{min(n - 1, int((y0 + size - p['y']) / size * n))}.png")
        rows.append(("tile", run(base, tiles)))
        boxes = []
        for p in rng.sample(points, args.n):
            half = size / 2 ** rng.randrange(2, 10)
            boxes.append(f"/api/points?x0={p['x'] - half}&y0={p['y'] - half * 0.6}&x1={p['x'] + half}"
                         f"&y1={p['y'] + half * 0.6}&limit=3000&sample=false")
        rows.append(("box query (viewport)", run(base, boxes)))
        ids = [urllib.parse.quote(p["id"], safe="") for p in rng.sample(points, args.n)]
        rows.append(("record + neighbours", run(base, [f"/api/records/{i}" for i in ids])))
        words = [w for p in rng.sample(points, args.n * 3) for w in p["snippet"].split()[:3]
                 if len(w) > 4 and w.isalpha()][: args.n]
        rows.append(("keyword search", run(base, [f"/api/search?q={urllib.parse.quote(w)}&limit=50" for w in words])))
        texts = [" ".join(p["snippet"].split()[:6]) for p in points if p["snippet"].strip()]
        queries = [urllib.parse.quote(t) for t in rng.sample(texts, 50)]
        rows.append(("semantic search", run(base, [f"/api/search?q={q}&mode=semantic&limit=50" for q in queries])))
        cached = {name: None for name, _ in rows}
        cached["page load to full map"] = np.array([page_load(base + "/")])
        cached["tile"] = run(base, tiles)
        rss, peak = memory_mib(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    print(f"{args.map}: {info['records']:,} points; server start {startup:.1f} s; "
          f"first semantic query (waits for the embedder to load) {first_semantic:.0f} ms; "
          f"server RSS {rss:.0f} MiB (peak {peak:.0f} MiB)")
    print("| request | n | p50 ms | p95 ms | cached p50 ms | cached p95 ms |")
    print("|---|---|---|---|---|---|")
    for name, ms in rows:
        again = cached[name]
        tail = f"{np.percentile(again, 50):.1f} | {np.percentile(again, 95):.1f}" if again is not None else "– | –"
        print(f"| {name} | {len(ms)} | {np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f} | {tail} |")


if __name__ == "__main__":
    main()
