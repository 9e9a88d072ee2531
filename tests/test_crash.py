"""kill -9 in the middle of a build stage, an edit and an export, then run again: the build
resumes or restarts cleanly, the previous map is untouched until the new one is published (before
its topics are named), the logs are sound, no acknowledged
edit is missing, and no half-written file sits at a target path. Each victim runs in its own
process and is killed where it says it is (a stall in a stand-in embedder, label model or
parquet writer), so the kill lands mid-stage every time."""

import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SMALL_SETTINGS
from fakes import ScriptedCompleter, pca_project, scripted_labels

from atlas.curation import Curation
from atlas.edits import EditLog
from atlas.mapdir import MapDir
from atlas.pipeline import embed, run
from atlas.pipeline import encode as encoding
from atlas.settings import EmbedSettings, LabelSettings, cache_dir

TESTS = Path(__file__).resolve().parent
CHUNKED = replace(SMALL_SETTINGS, embed=EmbedSettings(embedder="static", chunk_size=50))
LLM = replace(SMALL_SETTINGS, label=LabelSettings(method="llm"))

BUILD = """
import sys
from pathlib import Path
import fakes
from conftest import SMALL_SETTINGS
from dataclasses import replace
from atlas.pipeline import embed, run
from atlas.pipeline import encode as encoding
from atlas.settings import EmbedSettings, LabelSettings

stage, source, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if stage == "embed":
    load = encoding.load_embedder

    def stalling(*args):
        embedder = load(*args)
        encode, calls = embedder.encode, []

        def encode_or_stall(texts):
            if len(calls) == 2:
                fakes.stall("embedding chunk 2")
            calls.append(len(texts))
            return encode(texts)

        embedder.encode = encode_or_stall
        return embedder

    encoding.load_embedder = stalling  # what the embedding batch function loads
    settings = replace(SMALL_SETTINGS, embed=EmbedSettings(embedder="static", chunk_size=50))
else:
    run.project = fakes.pca_project
    fakes.scripted_labels(setattr, Path(sys.argv[4]), stall_after=int(sys.argv[5]))
    settings = replace(SMALL_SETTINGS, label=LabelSettings(method="llm"))
run.build(source, out, settings, force=True, quiet=True, log=lambda _: None)
"""


@pytest.fixture
def sandbox(tmp_path, small_table, monkeypatch):
    """Two sources (the first and last 200 records), a previous map of the first at
    tmp/map, and ATLAS_CACHE pointing at a fresh cache holding the static embedder."""
    cache = tmp_path / "cache"
    cache.mkdir()
    static = embed.static_model_path(cache_dir())
    (cache / static.name).symlink_to(static)
    monkeypatch.setenv("ATLAS_CACHE", str(cache))
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    pq.write_table(small_table.slice(0, 200), old)
    pq.write_table(small_table.slice(200), new)
    out = tmp_path / "map"
    run.build(old, out, SMALL_SETTINGS, quiet=True, log=lambda _: None)
    return tmp_path, new, out


def kill_when(args: list[str], said: str) -> list[str]:
    """Run a Python script, read its stdout until it prints `said`, kill -9 it; every other
    line it printed (before its death)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), str(TESTS)])}
    victim = subprocess.Popen([sys.executable, "-c", *args], stdout=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in victim.stdout:
        if line.strip() == said:
            break
        lines.append(line.strip())
    else:
        pytest.fail(f"the victim ended ({victim.wait()}) before printing {said!r}")
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    return lines + victim.stdout.read().split()


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith("edits")}


def test_kill_during_embedding_then_the_build_resumes(sandbox, monkeypatch):
    tmp, new, out = sandbox
    before = snapshot(out)
    kill_when([BUILD, "embed", str(new), str(out)], "embedding chunk 2")
    assert snapshot(out) == before  # the previous map is untouched
    chunks = tmp / ".map.partial" / "embedding_chunks"
    assert sorted(p.name for p in chunks.glob("*.npy")) == ["000000.npy", "000001.npy"]
    load, encoded = encoding.load_embedder, []

    def counting(*args):
        embedder = load(*args)
        encode = embedder.encode
        embedder.encode = lambda texts: encoded.append(len(texts)) or encode(texts)
        return embedder

    monkeypatch.setattr(encoding, "load_embedder", counting)
    result = run.build(new, out, CHUNKED, force=True, quiet=True, log=lambda _: None)
    assert encoded == [50, 50]  # chunks 2 and 3; chunks 0 and 1 were saved before the kill
    assert result.manifest()["records"] == 200 and result.manifest()["source"]["path"] == str(new)
    assert sorted(p.name for p in tmp.iterdir()) == ["cache", "map", "new.parquet", "old.parquet"]


def test_kill_during_labelling_then_the_build_restarts_and_reuses_the_answers(sandbox, monkeypatch):
    tmp, new, out = sandbox
    model = tmp / "scripted.gguf"
    model.write_bytes(b"GGUF scripted")
    answered = kill_when([BUILD, "label", str(new), str(out), str(model), "3"], "stalled after 3 answers")
    assert len(answered) == 3
    published = MapDir(out)  # naming starts once the new map is published, with keyword labels
    assert published.manifest()["source"]["path"] == str(new)
    assert published.labels_status()["state"] == "naming" and published.labels_status()["done"] <= 3
    answers = tmp / "cache" / "label_answers.sqlite"
    with closing(sqlite3.connect(answers)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM answers").fetchone()[0] == 3
    monkeypatch.setattr(run, "project", pca_project)
    scripted_labels(monkeypatch.setattr, model)
    result = run.build(new, out, LLM, force=True, quiet=True, log=lambda _: None)
    assert ScriptedCompleter.asked and not set(ScriptedCompleter.asked) & set(answered)  # no answer asked twice
    assert result.manifest()["labels"]["model"] == "scripted" and result.manifest()["records"] == 200
    assert not (tmp / ".map.partial").exists()


EDITOR = """
import sys
import pyarrow as pa
from atlas.edits import EditLog
from atlas.mapdir import MapDir
log = EditLog(sys.argv[1])
for i in range(1_000_000):
    entry = log.append("remove", pa.array([f"r{i}"] + [f"x{i}-{j}" for j in range(5000)]), reason=f"e{i}")
    print(entry.reason, flush=True)  # acknowledged
    if i == 20:
        print("twenty", flush=True)
"""


def test_kill_during_edits_keeps_every_acknowledged_edit(tmp_path):
    path = tmp_path / "edits.sqlite"
    acknowledged = kill_when([EDITOR, str(path)], "twenty")
    log = EditLog(path)
    assert log.integrity() == "ok"
    reasons = [e.reason for e in log.entries()]
    assert len(acknowledged) >= 21 and reasons[:len(acknowledged)] == acknowledged
    assert reasons == [f"e{i}" for i in range(len(reasons))]
    assert len(reasons) <= len(acknowledged) + 1  # at most the one committed but not yet acknowledged
    assert log.append("remove", pa.array(["r0"])).seq == len(reasons) + 1  # and it goes on


EXPORTER = """
import sys
import pyarrow as pa
import pyarrow.parquet as pq
import fakes
from atlas.curation import Curation

write = pq.write_table

def half_then_stall(table, where, **kwargs):
    write(table.slice(0, table.num_rows // 2), where, **kwargs)
    fakes.stall("half written")

pq.write_table = half_then_stall
Curation(sys.argv[1]).export(sys.argv[2])
"""


def test_kill_during_export_leaves_the_previous_export(curated, tmp_path):
    target = tmp_path / "clean.parquet"
    Curation(curated).export(target)
    before = target.read_bytes()
    Curation(curated).edit("remove", {"select": [{"where": "text_len < 100"}]})
    kill_when([EXPORTER, str(curated.path), str(target)], "half written")
    assert target.read_bytes() == before and pq.read_table(target).num_rows == 400
    assert Curation(curated).export(target) == pq.read_table(target).num_rows < 400  # a rerun replaces it
