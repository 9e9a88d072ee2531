"""End to end: `atlas serve` on the sample map, driven in headless Chromium."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.slow
BLOCKED = []  # what the page's Content-Security-Policy refused, from the console


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(sample_map):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "atlas", "serve", str(sample_map.path), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "api/map", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(process.stdout.read().decode())
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def page(chromium, server):
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.on("console", lambda m: BLOCKED.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(server)
    yield page
    page.close()


def wait_idle(page):
    page.wait_for_timeout(400)  # let a wheel zoom finish animating
    page.wait_for_function("() => !page.loading && document.querySelectorAll('.leaflet-tile-loaded').length > 0"
                           " && document.querySelectorAll('.topic-label').length > 0")


def test_map_labels_points_record_and_search(page, tmp_path):
    wait_idle(page)
    labels = page.locator(".topic-label")
    assert labels.count() >= 5
    assert set(page.eval_on_selector_all(".topic-label", "ns => ns.map(n => n.dataset.level)")) == {"0"}
    page.screenshot(path=tmp_path / "1-overview.png")

    # zoom in with the wheel over the biggest label: finer labels replace the coarse ones
    box = labels.first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(250)
    wait_idle(page)
    assert "1" in page.eval_on_selector_all(".topic-label", "ns => ns.map(n => n.dataset.level)")
    page.screenshot(path=tmp_path / "2-zoomed.png")

    # zoom until single points are drawn, then hover one and click it
    for _ in range(20):
        if int(page.eval_on_selector("#map", "m => m.dataset.points || 0")) > 0:
            break
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(400)
    page.wait_for_function("() => Number(document.getElementById('map').dataset.points) > 0")
    page.wait_for_timeout(400)
    wait_idle(page)
    # the drawn point nearest the map's centre that no label or control covers
    x, y = page.evaluate("""() => {
        const r = page.map.getContainer().getBoundingClientRect();
        const at = page.pointLayer.getLayers().map(m => page.map.latLngToContainerPoint(m.getLatLng()))
            .map(p => [r.left + p.x, r.top + p.y])
            .filter(([x, y]) => document.elementFromPoint(x, y)?.tagName === "CANVAS");
        const d = ([x, y]) => Math.hypot(x - r.left - r.width / 2, y - r.top - r.height / 2);
        return at.reduce((a, b) => d(a) <= d(b) ? a : b); }""")
    tooltip = page.locator(".leaflet-tooltip")
    for _ in range(5):  # a zoom that ends late redraws the points under a resting pointer: move onto it again
        page.mouse.move(x - 20, y - 20)
        page.mouse.move(x, y, steps=5)
        with suppress(PlaywrightTimeout):
            tooltip.wait_for(timeout=2000)
            break
    tooltip.wait_for()
    assert len(tooltip.inner_text()) > 10
    page.screenshot(path=tmp_path / "3-hover.png")
    page.mouse.click(x, y)
    page.locator("#record .text").wait_for()
    snippet = " ".join(tooltip.inner_text().rstrip("…").split())
    assert " ".join(page.locator("#record .text").inner_text().split()).startswith(snippet[:60])
    assert page.locator("#record .neighbors li").count() == 10
    page.screenshot(path=tmp_path / "4-record.png")

    # search: results are listed and drawn on the map
    page.fill("#query", "window manager")
    page.click("#search button")
    page.wait_for_function("() => document.querySelectorAll('#results-list li').length > 0")
    assert "window" in page.locator("#results-list li").first.inner_text().lower()
    page.select_option("#mode", "semantic")
    page.fill("#query", "tools to read email")
    page.click("#search button")
    page.wait_for_function("() => document.getElementById('results-count').textContent.includes('semantic')")
    assert page.locator("#results-list li").count() > 0
    page.screenshot(path=tmp_path / "5-search.png")
    print(f"screenshots in {tmp_path}")
    if os.environ.get("ATLAS_SCREENSHOTS"):  # keep them for a person to look at
        shutil.copytree(tmp_path, os.environ["ATLAS_SCREENSHOTS"], dirs_exist_ok=True)


def kept(page) -> int:
    return int(page.get_attribute("#kept-count", "data-kept"))


def wait_kept(page, count: int) -> None:
    page.wait_for_function(f"() => document.getElementById('kept-count').dataset.kept === '{count}'")
    wait_idle(page)


def lasso(page, radius: float = 110) -> None:
    """Draw a 16-sided lasso around the middle of the map with the mouse."""
    import math

    page.click(".tools button[data-tool=lasso]")
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx + radius, cy)
    page.mouse.down()
    for i in range(1, 17):
        angle = 2 * math.pi * i / 16
        page.mouse.move(cx + radius * math.cos(angle), cy + radius * math.sin(angle), steps=3)
    page.mouse.up()
    page.click(".tools button[data-tool=pan]")


def test_curate_and_export(page, server, tmp_path):
    import pyarrow.parquet as pq

    page.goto(server)
    page.wait_for_function("() => document.getElementById('kept-count').dataset.kept !== ''")
    wait_idle(page)
    total = kept(page)

    # 1-3: lasso an area, remove it, the counter drops by the selection
    lasso(page)
    page.wait_for_function("() => Number(document.getElementById('selection-count').dataset.count) > 0")
    selected = int(page.get_attribute("#selection-count", "data-count"))
    assert 0 < selected < total and page.locator("#selection-list .vrow").count() > 0
    page.screenshot(path=tmp_path / "6-lasso.png")
    page.fill("#reason", "off topic")
    page.click("#remove-selection")
    wait_kept(page, total - selected)
    page.screenshot(path=tmp_path / "7-removed.png")

    # 4: undo brings the count back
    page.click("#undo")
    wait_kept(page, total)

    # 5: remove duplicates, after a look at the biggest group
    page.click("#duplicates-panel summary")
    page.wait_for_function("() => document.querySelectorAll('#dup-groups li').length > 0")
    removable = int(page.get_attribute("#dup-summary", "data-removable"))
    page.click("#dup-groups li >> nth=0")
    page.locator("#group-members .member").nth(1).wait_for()
    page.screenshot(path=tmp_path / "8-duplicates.png")
    page.click("#close-group")
    page.click("#remove-duplicates")
    wait_kept(page, total - removable)

    # 6: cap every coarse topic at 600 records: preview, then apply
    page.click("#balance-panel summary")
    page.fill("#quota-value", "600")
    page.click("#preview-quota")
    page.wait_for_function("() => document.getElementById('balance-status').dataset.remove !== undefined")
    quota = int(page.get_attribute("#balance-status", "data-remove"))
    assert quota > 0
    page.screenshot(path=tmp_path / "9-quota-preview.png")
    page.click("#apply-quota")
    wait_kept(page, total - removable - quota)
    shown = kept(page)
    page.screenshot(path=tmp_path / "10-curated.png")

    # 7: tag the selection with the name typed in the panel
    page.fill("#tag-name", "looked at")
    page.click("#tag-selection")
    page.wait_for_function("() => fetch('api/state').then((r) => r.json()).then((s) => s.tags['looked at'] > 0)")

    # 8: export, fetched then saved: the file holds exactly the records the page shows as kept
    with page.expect_download() as download:
        page.click("#export")
    assert download.value.suggested_filename.endswith("-clean.parquet")
    path = tmp_path / "clean.parquet"
    download.value.save_as(path)
    assert pq.read_metadata(path).num_rows == shown
    if os.environ.get("ATLAS_SCREENSHOTS"):
        shutil.copytree(tmp_path, os.environ["ATLAS_SCREENSHOTS"], dirs_exist_ok=True)


def test_errors_show_beside_their_control_once(page, server):
    page.goto(server)
    page.wait_for_function("() => document.getElementById('kept-count').dataset.kept !== ''")
    wait_idle(page)
    shown = page.locator(".error:not(:empty)")

    # a bad filter: the server's message beside the filter box, nowhere else; the next try clears it
    page.fill("#filter", "nope = 1")
    page.click("#filter-form button[type=submit]")
    page.locator("#filter-error:not(:empty)").wait_for()
    assert page.inner_text("#filter-error").startswith("filter: unknown column 'nope'; columns are: package,")
    assert shown.count() == 1
    page.fill("#filter", "text_len > 0")
    page.click("#filter-form button[type=submit]")
    page.locator("#filter-error").wait_for(state="hidden")
    assert shown.count() == 0

    # a tag with no name: the server's rule, in the selection panel
    lasso(page)
    page.wait_for_function("() => Number(document.getElementById('selection-count').dataset.count) > 0")
    page.fill("#tag-name", "")
    page.click("#tag-selection")
    page.locator("#selection-error:not(:empty)").wait_for()
    assert page.inner_text("#selection-error") == "tag and untag need a tag name; remove and restore take none"
    assert shown.count() == 1

    # a server failure on export with a plain-text body: its status beside Export, and no download
    downloads = []
    page.on("download", lambda download: downloads.append(download))
    page.route("**/api/export.parquet*", lambda route: route.fulfill(status=500, content_type="text/plain",
                                                                     body="Internal Server Error"))
    page.click("#export")
    page.locator("#header-error:not(:empty)").wait_for()
    assert page.inner_text("#header-error") == "500 Internal Server Error" and downloads == []
    assert page.inner_text("#selection-error") != ""  # each error stays where it happened
    page.unroute("**/api/export.parquet*")


def test_the_page_runs_under_its_content_security_policy(page):
    assert BLOCKED == []  # after every test above drove the page


def test_a_notebook_page_frames_map_show_and_curates_through_it(small_map, tmp_path, chromium):
    """Map.show's server in an IFrame of a page on another localhost port, as Jupyter shows it:
    tiles load, and an edit made in the frame lands in the log the Map reads."""
    import http.server
    import threading

    import atlas

    m = atlas.open(shutil.copytree(small_map.path, tmp_path / "map"))
    entry = m.remove(topic=0)
    frame = m.show()
    notebook = f'<html><body><iframe id="map" src="{frame.src}" width="1200" height="800"></iframe></body></html>'

    class Notebook(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(notebook.encode())

        def log_message(self, *args):
            pass

    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Notebook)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    refused = []
    try:
        page = chromium.new_page()
        page.on("console", lambda m: refused.append(m.text) if "refused" in m.text.lower() else None)
        page.goto(f"http://localhost:{host.server_address[1]}/")
        page.frame_locator("#map").locator("img.leaflet-tile-loaded").first.wait_for(timeout=60_000)
        framed = next(f for f in page.frames if f.url == frame.src)
        status = framed.evaluate("""async () => {
            const secret = document.querySelector('meta[name=atlas-token]').content;
            const headers = {'Content-Type': 'application/json', 'X-Atlas-Token': secret};
            return (await fetch('/api/undo', {method: 'POST', headers})).status;
        }""")
        page.close()
    finally:
        host.shutdown()
        m.stop()
    assert status == 200 and refused == []
    assert m.edits["in_force"].tolist() == [False, False] and m.edits["target"].tolist()[1] == entry.seq
