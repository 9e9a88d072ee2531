"""The before/after report: valid self-contained HTML with two map images, the counts, and
Bokeh charts that carry the exact numbers and render offline under the route's own CSP."""

import base64
import hashlib
import io
import re
from html.parser import HTMLParser

import numpy as np
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner
from PIL import Image

from atlas.cli import main
from atlas.curation import Curation
from atlas.curation_report import charts, render, summary
from atlas.schema import TEXT_LEN
from atlas.server.app import create_app

REASON = "</script><b>not</b> wanted"


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.open, self.cells, self.scripts, self.roots = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag not in ("meta", "br"):
            self.open.append(tag)
        if tag == "script":
            self.scripts.append(attrs)
        if "data-root-id" in attrs:
            self.roots.append(attrs["data-root-id"])

    def handle_endtag(self, tag):
        assert self.open.pop() == tag

    def handle_data(self, data):
        if self.open and self.open[-1] == "td":
            self.cells.append(data)


@pytest.fixture
def edited(curated, small_table):
    """The curation map with two removals: the perl section (a hostile reason), then duplicates."""
    curation = Curation(curated)
    curation.edit("remove", {"select": [{"where": "section = 'perl'"}]}, reason=REASON)
    every = ["exact", "near", "semantic", "template"]  # the 400 records' pairs are template pairs
    curation.edit("remove", {"duplicates": {"keep": "longest", "kinds": every}}, reason="dedup")
    return curation


def test_report(edited, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(edited.mapdir.path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    page = Collector()
    page.feed(html)
    assert page.open == []  # every tag closed
    assert len(page.images) == 2
    for src in page.images:
        png = Image.open(io.BytesIO(base64.b64decode(src.removeprefix("data:image/png;base64,"))))
        assert png.format == "PNG" and png.size == (600, 600)
    kept = int(edited.kept().sum())
    assert f"{kept:,}" in page.cells and "400" in page.cells
    assert "&lt;/script&gt;&lt;b&gt;not&lt;/b&gt; wanted" in html and "<b>not" not in html
    assert "duplicates (keep longest)" in page.cells and "filter" in page.cells
    # Self-contained: BokehJS inline, nothing fetched; one Bokeh root per chart: removals by reason,
    # by action, duplicates by kind, lengths, and one per topic level.
    assert all("src" not in attrs for attrs in page.scripts) and "cdn.bokeh.org" not in html
    assert len(page.roots) == 4 + edited.manifest["levels"] == 6
    assert len(re.findall(r"<h2>Topic shares, level \d", html)) == edited.manifest["levels"]


def test_chart_numbers(edited, small_table):
    data = summary(edited)
    kept = edited.kept()
    perl = int(pc.sum(pc.equal(small_table.column("section"), "perl")).as_py())
    assert data["by_reason"] == {"dedup": 400 - int(kept.sum()) - perl, REASON: perl}
    plots = dict(charts(data))
    (reason,) = plots["Removals by reason"].renderers
    assert reason.data_source.data == {"name": ["dedup", REASON], "records": [400 - int(kept.sum()) - perl, perl]}
    assert list(plots["Removals by reason"].y_range.factors) == [REASON, "dedup"]  # the largest on top

    # Text lengths: power-of-two bins from the shortest text's up, as a bincount of log2 gives them.
    text_len = edited.frame.points.column(TEXT_LEN).to_numpy()
    assert text_len.min() >= 1
    per_power = np.bincount(np.log2(text_len).astype(int))
    first = int(np.log2(text_len.min()))
    lengths = data["text_length"]
    assert lengths["edges"] == [2 ** k for k in range(first, len(per_power) + 1)]
    assert lengths["before"] == per_power[first:].tolist()
    kept_per_power = np.bincount(np.log2(text_len[kept]).astype(int), minlength=len(per_power))
    assert lengths["after"] == kept_per_power[first:].tolist()
    assert sum(lengths["before"]) == 400 and sum(lengths["after"]) == int(kept.sum())
    bars = plots["Text length in characters, before and after"].renderers[0].data_source.data
    assert bars["before"] == lengths["before"] and bars["after"] == lengths["after"]
    assert bars["bin"][:2] == [f"{2 ** first}–{2 ** (first + 1) - 1}", f"{2 ** (first + 1)}–{2 ** (first + 2) - 1}"]

    # Topic shares at the coarse level: every topic, its records before and after, in map colours.
    topic = edited.topic(0)
    (heading, shares), = [(h, p) for h, p in plots.items() if h.startswith("Topic shares, level 0")]
    source = shares.renderers[0].data_source.data
    order = np.argsort(-np.bincount(topic), kind="stable")
    assert source["before"] == np.bincount(topic)[order].tolist()
    assert source["after"] == np.bincount(topic[kept], minlength=topic.max() + 1)[order].tolist()
    assert source["share_after"] == pytest.approx((np.array(source["after"]) / kept.sum()).tolist())
    assert source["color"] == [t["color"] for t in data["levels"][0]]


def test_report_without_edits(curated):
    """Nothing removed: the three removal charts say "none"; lengths and topic shares are drawn."""
    curation = Curation(curated)
    page = Collector()
    page.feed(render(summary(curation), (b"", b"")))
    assert len(page.roots) == 1 + curation.manifest["levels"]
    assert page.cells.count("none") == 1  # the removals table
    assert render(summary(curation), (b"", b"")).count("<p>none</p>") == 3


def test_report_route_policy(edited, tmp_path, local_client, request):
    """The report route sends its own CSP: its inline scripts by hash, nothing from the network."""
    response = local_client(create_app(edited.mapdir.path)).get("/api/report")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", response.text, flags=re.S)
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts]
    assert len(scripts) == 3  # BokehJS, its log level, the charts' document
    assert policy == (f"default-src 'none'; script-src {' '.join(hashes)}; style-src 'unsafe-inline'; img-src data:; "
                      "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    page = request.getfixturevalue("chromium").new_page()  # only now: the checks above need no browser
    errors, fetched = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def serve(route):
        if route.request.url == "http://report.test/":
            route.fulfill(body=response.text, content_type="text/html",
                          headers={"Content-Security-Policy": policy})
        else:
            fetched.append(route.request.url)
            route.abort()

    page.route("**/*", serve)
    page.goto("http://report.test/")
    page.wait_for_function("window.Bokeh && Bokeh.documents.length === 1"
                           " && document.querySelectorAll('.bk-Figure').length === 6")
    page.close()
    assert errors == [] and fetched == []
