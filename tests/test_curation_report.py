"""The before/after report: valid self-contained HTML with two images and the counts."""

import base64
import io
import re
from html.parser import HTMLParser

from click.testing import CliRunner
from PIL import Image

from atlas.cli import main
from atlas.curation import Curation


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.open, self.cells = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag not in ("meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag

    def handle_data(self, data):
        if self.open and self.open[-1] == "td":
            self.cells.append(data)


def test_report(curated, tmp_path):
    curation = Curation(curated)
    curation.edit("remove", {"select": [{"where": "section = 'perl'"}]}, reason="<b>not</b> wanted")
    curation.edit("remove", {"duplicates": {"keep": "longest"}}, reason="dedup")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(curated.path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    page = Collector()
    page.feed(html)
    assert page.open == []  # every tag closed
    assert len(page.images) == 2
    for src in page.images:
        png = Image.open(io.BytesIO(base64.b64decode(src.removeprefix("data:image/png;base64,"))))
        assert png.format == "PNG" and png.size == (600, 600)
    kept = int(curation.kept().sum())
    assert f"{kept:,}" in page.cells and "400" in page.cells
    assert "&lt;b&gt;not&lt;/b&gt; wanted" in html and "<b>not" not in html
    assert "duplicates (keep longest)" in page.cells and "filter" in page.cells
    assert len(re.findall(r"<h2>Topic shares, level \d</h2>", html)) == curation.manifest["levels"]
