"""Nothing lost: the edit log replays any number of edits, a rebuild's swap drops no edit,
writers in several processes all land, and a rebuild under a running reader is refused."""

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SMALL_SETTINGS

from atlas.curation import Curation
from atlas.edits import EditLog, pack_ids
from atlas.errors import MapChanged
from atlas.mapdir import MapDir, publish, staging_for
from atlas.pipeline import run
from atlas.server.app import create_app

IDS = pa.array([f"r{i}" for i in range(10)])


def test_state_replays_more_edits_than_sqlite_binds(tmp_path, monkeypatch):
    """40,005 edits, with SQLite allowing 999 variables per statement (its old default)."""
    connect = sqlite3.connect

    def limited(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        return db

    monkeypatch.setattr(sqlite3, "connect", limited)
    log = EditLog(tmp_path / "edits.sqlite")
    blobs = [pack_ids(IDS.slice(i, 1)) for i in range(10)]
    now = datetime.now(UTC).isoformat()
    # Record k removes (or, in odd tens, restores) record k % 10: the last five remove r0..r4.
    rows = [("remove" if (k // 10) % 2 == 0 else "restore", blobs[k % 10], 1, now) for k in range(40_005)]
    with connect(log.path) as db:  # one transaction: 40k appends would take minutes with fsync each
        db.executemany("INSERT INTO edits (action, ids, count, created) VALUES (?, ?, ?, ?)", rows)
    state = log.state(IDS)
    assert state.removed_by.tolist() == [40_001, 40_002, 40_003, 40_004, 40_005, 0, 0, 0, 0, 0]
    log.undo()
    assert np.flatnonzero(log.state(IDS).removed).tolist() == [0, 1, 2, 3]


WRITER = """
import sys
import pyarrow as pa
from atlas.edits import EditLog
log = EditLog(sys.argv[1])
print("ready", flush=True)
for i in range(int(sys.argv[3])):
    entry = log.append("tag", pa.array([f"r{i % 10}"]), tag=sys.argv[2], reason=f"{sys.argv[2]}-{i}")
    print(entry.reason, flush=True)  # acknowledged
"""


def start_writers(path, names, count):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, str(count)], stdout=subprocess.PIPE,
                                text=True, env=env) for name in names]
    for writer in writers:
        assert writer.stdout.readline() == "ready\n"
    return writers


def acknowledged(writers) -> list[str]:
    lines = []
    for writer in writers:
        assert writer.wait(timeout=120) == 0  # 40 short lines: the pipe never fills
        # read through the text stream: start_writers' readline may hold later lines in its
        # buffer, which communicate(timeout=...) would miss (it reads the pipe itself)
        lines += writer.stdout.read().split()
        writer.stdout.close()
    return lines


def test_writers_in_processes_and_a_rebuild_swapping_the_map_lose_nothing(tmp_path):
    """A CLI and two tabs write while rebuilds publish new maps over theirs: every
    acknowledged edit is in the final log, in one sound file."""
    out = tmp_path / "map"
    out.mkdir()
    path = MapDir(out).edits_path
    writers = start_writers(path, ["cli", "tab1", "tab2"], 40)
    swaps = 0
    while any(w.poll() is None for w in writers) or swaps < 3:
        staging = staging_for(out)
        staging.path.mkdir()
        (staging.path / "build").write_text(str(swaps))
        publish(staging, out)
        swaps += 1
    acks = acknowledged(writers)
    log = EditLog(path)
    assert len(acks) == 120 and sorted(e.reason for e in log.entries()) == sorted(acks)
    assert log.integrity() == "ok" and (out / "build").read_text() == str(swaps - 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map"]  # no .old nor .partial left


def test_concurrent_writers_all_land_in_order(tmp_path):
    path = tmp_path / "edits.sqlite"
    EditLog(path)
    writers = start_writers(path, ["a", "b", "c"], 30)
    acks = acknowledged(writers)
    entries = EditLog(path).entries()
    assert len(acks) == 90 and sorted(e.reason for e in entries) == sorted(acks)
    assert [e.seq for e in entries] == list(range(1, 91))
    for name in "abc":  # each writer's edits in the order it made them
        assert [e.reason for e in entries if e.tag == name] == [f"{name}-{i}" for i in range(30)]


@pytest.fixture
def rebuild(tmp_path, small_table):
    """Rebuild a map in place from the same 400 records (a new build id; embeddings reused)."""
    source = tmp_path / "again.parquet"
    pq.write_table(small_table, source)
    return lambda mapdir: run.build(source, mapdir.path, SMALL_SETTINGS, force=True, quiet=True, log=lambda _: None)


MESSAGE = "{path} was rebuilt after it was opened here; restart `atlas serve` (or run the command again) to work on " \
          "the new map"


def test_a_rebuild_under_a_curation_refuses_its_writes_and_positional_reads(curated, rebuild):
    curation = Curation(curated)
    before = curation.edit("remove", {"select": [{"where": "section = 'perl'"}]})
    build_id = curated.build_id()
    rebuild(curated)
    assert curated.build_id() != build_id
    for call in (lambda: curation.edit("tag", {"select": [{"where": "text_len < 50"}]}, tag="short"),
                 curation.undo, curation.redo, curation.duplicate_removals, lambda: curation.quota(cap=5)):
        with pytest.raises(MapChanged) as error:
            call()
        assert str(error.value) == MESSAGE.format(path=curated.path)
    fresh = Curation(curated)  # the edit carried over into the new build's log
    assert [e.seq for e in fresh.log.active()] == [before.seq]
    assert int(fresh.state().removed.sum()) == before.count
    assert fresh.edit("tag", {"select": [{"where": "text_len < 50"}]}, tag="short").seq == before.seq + 1


def test_the_server_answers_409_to_writes_after_a_rebuild(curated, rebuild, local_client):
    client = local_client(create_app(curated.path))
    edit = {"action": "remove", "predicate": {"select": [{"where": "text_len < 50"}]}}
    assert client.post("/api/edits", json=edit).status_code == 200
    rebuild(curated)
    response = client.post("/api/edits", json=edit)
    assert response.status_code == 409
    assert response.json() == {"error": MESSAGE.format(path=curated.path)}
    assert client.post("/api/undo").status_code == 409
    assert client.get("/api/points", params={"x0": -1e9, "y0": -1e9, "x1": 1e9, "y1": 1e9}).json()["total"] == 400
    fresh = local_client(create_app(curated.path))  # a restarted server curates the new build
    assert fresh.post("/api/undo").status_code == 200


HOLDER = """
import sys, time
from pathlib import Path
from atlas.mapdir import edit_log_lock
with edit_log_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(1)
    Path(sys.argv[2]).write_text("written")  # still holding the lock
"""


def test_publish_waits_for_a_writer_holding_the_log(tmp_path):
    """The swap takes the log's lock exclusively: it waits while a writer holds the log."""
    out = tmp_path / "map"
    out.mkdir()
    log_path = MapDir(out).edits_path
    EditLog(log_path).append("remove", IDS.slice(0, 1))
    staging = staging_for(out)
    staging.path.mkdir()
    marker = tmp_path / "marker"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(log_path), str(marker)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert holder.stdout.readline() == "held\n"
    publish(staging, out)
    assert marker.read_text() == "written"  # publish went on only after the holder let go
    assert holder.wait() == 0
    assert [e.count for e in EditLog(log_path).entries()] == [1]
