"""The map never waits for the names: naming writes into a published map as it goes, and the
server takes the new names up without a restart."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest

from atlas.mapdir import MapDir
from atlas.pipeline import relabel as relabel_module
from atlas.pipeline.label import keyword_labels
from atlas.report import describe
from atlas.server.app import create_app
from atlas.settings import LabelSettings

needs_model = pytest.mark.skipif(relabel_module.find_model("smollm2", relabel_module.cache_dir()) is None,
                                 reason="the bundled model is not installed (scripts/setup)")


@pytest.fixture
def map_copy(small_map, tmp_path, monkeypatch) -> MapDir:
    monkeypatch.setenv("ATLAS_CACHE", str(tmp_path / "cache"))
    return MapDir(shutil.copytree(small_map.path, tmp_path / "map"))


def interrupted_after(named: int):
    """Stands in for llm_labels: names `named` topics, reporting each, then is interrupted."""

    def fake(parent, level, size, keywords, fallback, examples, completer, *, scorer, samples, cache, facts, levels,
             current, finest, vocabulary, members, on_topic):
        result = current or keyword_labels(keywords, fallback)
        for topic in range(named):
            result.label[topic], result.source[topic] = f"Name {topic}", "llm"
            on_topic(result)
        raise KeyboardInterrupt

    return fake


@needs_model
def test_interrupted_naming_keeps_the_names_made(map_copy, monkeypatch):
    monkeypatch.setattr(relabel_module, "llm_labels", interrupted_after(3))
    monkeypatch.setattr(relabel_module, "CHECKPOINT_S", 0.0)
    total = map_copy.topics().num_rows
    with pytest.raises(KeyboardInterrupt):
        relabel_module.relabel(map_copy, LabelSettings(), quiet=True, log=lambda _: None)
    assert map_copy.labels_status() == {"state": "stopped", "done": 3, "total": total, "model": "smollm2"}
    topics = map_copy.topics()
    assert topics.column("label").to_pylist()[:4] == ["Name 0", "Name 1", "Name 2",
                                                      topics.column("keyword_label")[3].as_py()]
    assert map_copy.manifest()["labels"] == {"method": "keywords"}  # the run did not finish
    text = describe(map_copy.path)
    assert f"until smollm2 has named every topic: 3 of {total} named (stopped)" in text
    assert "\n  label          0.00s\n" in text  # keyword labels take no time: no records/s for them


def test_keyword_relabel_clears_the_status(map_copy):
    map_copy.write_labels_status({"state": "stopped", "done": 1, "total": 2, "model": "smollm2"})
    relabel_module.relabel(map_copy, LabelSettings(method="keywords"), quiet=True, log=lambda _: None)
    assert map_copy.labels_status() is None
    topics = map_copy.topics()
    assert topics.column("label").to_pylist() == topics.column("keyword_label").to_pylist()


def test_server_takes_up_new_names(map_copy, local_client):
    client = local_client(create_app(map_copy.path))
    first = client.get("/api/labels-status").json()
    assert first["state"] == "none"
    map_copy.write_labels_status({"state": "naming", "done": 1, "total": 9, "model": "smollm2"})
    topics = map_copy.topics()
    renamed = topics.set_column(topics.schema.get_field_index("label"), "label",
                                pa.array(topics.column("label").to_pylist()[:-1] + ["Brand new name"]))
    map_copy.write_topics(renamed)
    status = client.get("/api/labels-status").json()
    assert {k: status[k] for k in ("state", "done", "total")} == {"state": "naming", "done": 1, "total": 9}
    assert status["version"] != first["version"]
    assert client.get("/api/topics").json()[-1]["label"] == "Brand new name"
    assert client.get("/api/labels-status").json()["version"] == status["version"]


def test_open_page_shows_names_as_they_come(map_copy, chromium):
    """A real `atlas serve` and Chromium: the note counts, and a new name reaches the topic tree
    without a reload."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    total = map_copy.topics().num_rows
    map_copy.write_labels_status({"state": "naming", "done": 1, "total": total, "model": "smollm2"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "atlas", "serve", str(map_copy.path), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/map", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function(f"() => document.getElementById('labels-note').textContent === "
                               f"'naming topics: 1/{total}' && !document.getElementById('labels-note').hidden")
        topics = map_copy.topics()
        labels = topics.column("label").to_pylist()
        map_copy.write_topics(topics.set_column(topics.schema.get_field_index("label"), "label",
                                                pa.array(["Brand new name"] + labels[1:])))
        map_copy.write_labels_status({"state": "done", "done": total, "total": total, "model": "smollm2"})
        page.wait_for_function("() => document.getElementById('labels-note').dataset.state === 'done'")
        assert page.locator("#labels-note").is_hidden()
        assert page.locator('.tree [data-topic="0"] > .name').first.text_content() == "Brand new name"
        page.close()
    finally:
        server.terminate()
        server.wait(10)
