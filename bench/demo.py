"""Seconds from `atlas demo` to a map in the browser, on a cold cache, and to all its names.

    scripts/setup --dev && .venv/bin/python bench/demo.py [--port 8765]

It drives Debian's Chromium with playwright, which the dev install adds (`scripts/setup`
alone installs what `atlas demo` needs, not the browser driver).

Runs `atlas demo` with a fresh ATLAS_CACHE (so the ONNX export and every label answer are
made anew; it sees the label models scripts/setup installed there) into a fresh map folder,
opens the page in headless Chromium as soon as the server answers, and prints when the
first tiles (and the keyword labels) were drawn, then when the page showed the last LLM name
(labels_status.json "done" and the note gone).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from atlas.settings import cache_dir

ROOT = Path(__file__).resolve().parents[1]


def wait_for_server(url: str, demo: subprocess.Popen, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if demo.poll() is not None:
            raise SystemExit(f"atlas demo exited with {demo.returncode}")
        try:
            urllib.request.urlopen(url + "api/map", timeout=2).read()
            return
        except OSError:
            time.sleep(0.25)
    raise SystemExit(f"no server at {url} after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise SystemExit("bench/demo.py drives Chromium with playwright: run scripts/setup --dev") from None

    scratch = Path(tempfile.mkdtemp(prefix="atlas-demo-"))
    models = cache_dir() / "models"
    if models.is_dir():
        (scratch / "cache").mkdir()
        (scratch / "cache" / "models").symlink_to(models.resolve())
    env = {**os.environ, "ATLAS_CACHE": str(scratch / "cache"), "PYTHONPATH": str(ROOT)}
    url = f"http://127.0.0.1:{args.port}/"
    start = time.perf_counter()
    demo = subprocess.Popen([sys.executable, "-m", "atlas", "demo", "--out", str(scratch / "map"), "--quiet",
                             "--port", str(args.port)], env=env, cwd=scratch)
    try:
        wait_for_server(url, demo, args.timeout)
        served = time.perf_counter() - start
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url, timeout=args.timeout * 1000)
            page.wait_for_function("() => typeof page !== 'undefined' && page.info && !page.loading"
                                   " && document.querySelectorAll('.leaflet-tile-loaded').length > 0"
                                   " && document.querySelectorAll('.topic-label').length > 0", polling=100,
                                   timeout=args.timeout * 1000)
            tiles = time.perf_counter() - start
            print(f"server answering: {served:.0f} s; first tiles and labels in the browser: {tiles:.0f} s",
                  flush=True)
            page.wait_for_function("() => document.getElementById('labels-note').dataset.state === 'done'",
                                   polling=500, timeout=args.timeout * 1000)
            names = time.perf_counter() - start
            coarse = page.evaluate("() => page.topics.filter((t) => t.level === 0).map((t) => t.label)")
            browser.close()
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
    print(f"all names in the page: {names:.0f} s")
    print("coarse names:", "; ".join(coarse))
    manifest = json.loads((scratch / "map" / "manifest.json").read_text())
    stages = {**manifest["stages"], "naming": manifest["labels"]}
    print("estimates printed before a stage / measured:", "; ".join(
        f"{name} {info['estimate_s']:.0f} s / {info['seconds']:.0f} s" for name, info in stages.items()
        if "estimate_s" in info))


if __name__ == "__main__":
    main()
