"""The edit log: undo/redo, state, replay onto a changed dataset, crash safety, concurrent writers."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from atlas.cli import main
from atlas.curation import Curation
from atlas.edits import EditLog, pack_ids, unpack_ids
from atlas.errors import AtlasError

IDS = pa.array([f"r{i}" for i in range(10)])


def ids(*numbers):
    return pa.array([f"r{i}" for i in numbers])


def removed(log):
    return np.flatnonzero(log.state(IDS).removed).tolist()


def test_undo_redo_and_a_new_edit_clears_redo(tmp_path):
    log = EditLog(tmp_path / "edits.sqlite")
    log.append("remove", ids(1, 2), reason="junk")
    log.append("remove", ids(3))
    log.append("restore", ids(2))
    assert removed(log) == [1, 3]
    assert log.undo().target == 3 and removed(log) == [1, 2, 3]
    assert log.undo().target == 2 and removed(log) == [1, 2]
    assert log.redo().target == 2 and removed(log) == [1, 2, 3]
    assert log.can_redo()
    log.append("remove", ids(7))  # clears the redo stack
    assert not log.can_redo() and log.redo() is None
    assert removed(log) == [1, 2, 3, 7]
    for _ in range(3):
        log.undo()
    assert removed(log) == [] and log.undo() is None
    assert [e.action for e in log.entries()] == ["remove", "remove", "restore", "undo", "undo", "redo", "remove",
                                                 "undo", "undo", "undo"]


def test_state_tags_and_removed_by(tmp_path):
    log = EditLog(tmp_path / "edits.sqlite")
    first = log.append("remove", ids(1, 2, 99))  # r99 is not in this dataset: skipped
    log.append("tag", ids(1, 4), tag="junk")
    log.append("tag", ids(5), tag="keep")
    log.append("untag", ids(5), tag="keep")
    second = log.append("remove", ids(2))
    state = log.state(IDS)
    assert state.removed_by[[1, 2]].tolist() == [first.seq, second.seq]
    assert list(state.tags) == ["junk"] and np.flatnonzero(state.tags["junk"]).tolist() == [1, 4]
    assert log.state(IDS) is state  # cached until the log changes
    log.undo()
    assert log.state(IDS) is not state and log.state(IDS).removed_by[2] == first.seq
    with pytest.raises(AtlasError, match="tag name"):
        log.append("tag", ids(1))
    with pytest.raises(AtlasError, match="edit action is one of"):
        log.append("delete", ids(1))


def test_ids_pack_compactly():
    many = pa.array([f"package-{i:07d}" for i in range(100_000)])
    blob = pack_ids(many)
    assert len(blob) < 400_000 and unpack_ids(blob).equals(many)
    assert unpack_ids(pack_ids(pa.array(["a\nb", ""]))).to_pylist() == ["a\nb", ""]


WRITER = """
import sys, pyarrow as pa
from atlas.edits import EditLog
log = EditLog(sys.argv[1])
for i in range(100000):
    log.append("remove", pa.array([f"r{i}"] + [f"x{i}-{j}" for j in range(2000)]))
    if i == 5:
        print("writing", flush=True)
"""


def test_kill_mid_write_leaves_a_sound_log(tmp_path):
    path = tmp_path / "edits.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    log = EditLog(path)
    assert log.integrity() == "ok"
    committed = log.entries()
    assert len(committed) > 5 and [e.seq for e in committed] == list(range(1, len(committed) + 1))
    dataset = pa.array([f"r{i}" for i in range(len(committed) + 10)])
    assert np.flatnonzero(log.state(dataset).removed).tolist() == list(range(len(committed)))
    assert log.append("remove", ids(1)).seq == len(committed) + 1  # and it goes on


def test_two_writers_at_once_both_land(tmp_path):
    path = tmp_path / "edits.sqlite"
    EditLog(path)
    errors = []

    def write(name):
        try:
            log = EditLog(path)  # one per "tab"
            for i in range(20):
                log.append("tag", ids(i % 10), tag=name)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    entries = EditLog(path).entries()
    assert len(entries) == 40 and {e.tag for e in entries} == {"a", "b"}


def test_replay_onto_a_changed_dataset(curated, curation_maps, tmp_path):
    """Export from the full map, apply to the version without rows 0-39."""
    curation = Curation(curated)
    dropped = curation.frame.records.column("id").slice(0, 40).to_pylist()
    first_positions = np.isin(curation.ids.to_numpy(zero_copy_only=False), dropped[:3])
    lasso_ids = [*dropped[:3], *curation.ids.filter(~first_positions).slice(0, 5).to_pylist()]
    curation.edit("remove", {"select": [{"ids": lasso_ids}]}, reason="picked")
    curation.edit("remove", {"select": [{"where": "section = 'perl'"}]}, reason="perl")
    curation.edit("tag", {"select": [{"box": [-100, -100, 100, 100]}]}, tag="all")
    curation.edit("remove", {"duplicates": {"keep": "first"}})
    exported = tmp_path / "curation.json"
    result = CliRunner().invoke(main, ["edits", "export", str(curated.path)])
    assert result.exit_code == 0, result.output
    exported.write_text(result.output)
    items = json.loads(result.output)
    assert items[2]["drawn"] == {"select": [{"box": [-100, -100, 100, 100]}]}  # a box replays by ids
    assert len(items[2]["predicate"]["select"][0]["ids"]) == 400

    other = shutil.copytree(curation_maps[1].path, tmp_path / "other")
    result = CliRunner().invoke(main, ["edits", "apply", str(other), str(exported)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "3 ids not on this map" in lines[0] and "40 ids not on this map" in lines[2]
    replayed = Curation(other)
    state = replayed.state()
    assert int(state.removed.sum()) >= 5 and int(state.tags["all"].sum()) == 360
    perl = replayed.frame.mask("section = 'perl'")
    assert state.removed[perl].all()


def test_cli_edit_cycle(curated):
    run = CliRunner().invoke
    path = str(curated.path)
    assert "removed" in run(main, ["edits", path]).output
    result = run(main, ["remove", path, "--topic", "0", "--reason", "off topic"])
    assert result.exit_code == 0 and "(edit 1)" in result.output
    assert run(main, ["tag", path, "junk", "--where", "text_len < 100"]).exit_code == 0
    assert "undo: edit 2" in run(main, ["undo", path]).output
    assert "redo: edit 2" in run(main, ["redo", path]).output
    listing = run(main, ["edits", "list", path]).output
    assert "tag junk:" in listing and "off topic" in listing
    assert run(main, ["restore", path, "--all"]).exit_code == 0
    assert run(main, ["edits", path]).output.startswith("0 of 400 records removed")
    bad = run(main, ["remove", path, "--topic", "0", "--duplicates"])
    assert bad.exit_code == 1 and "remove needs one of" in bad.output


def test_a_rebuild_keeps_the_log(tmp_path):
    from atlas.mapdir import MapDir, publish, staging_for

    out = tmp_path / "map"
    out.mkdir()
    EditLog(MapDir(out).edits_path).append("remove", ids(1), reason="kept")
    staging = staging_for(out)
    staging.path.mkdir()
    published = publish(staging, out)
    assert [e.reason for e in EditLog(published.edits_path).entries()] == ["kept"]


def test_cli_duplicates_and_quota(curated):
    run = CliRunner().invoke
    path = str(curated.path)
    preview = run(main, ["remove", path, "--quota", "cap=40", "--preview"])
    assert preview.exit_code == 0 and "->" in preview.output
    assert run(main, ["edits", path]).output.startswith("0 of 400")  # a preview removes nothing
    result = run(main, ["remove", path, "--duplicates", "--keep", "first", "--reason", "dups"])
    assert result.exit_code == 0 and "(edit 1)" in result.output
    removed = int(run(main, ["edits", path]).output.split()[0])
    bad = run(main, ["remove", path, "--duplicates", "--kinds", "near,copies"])
    assert bad.exit_code == 1 and "duplicate kinds are one or more of exact, near, semantic, template" in bad.output
    result = run(main, ["remove", path, "--duplicates", "--kinds", "exact,near,semantic,template", "--keep", "first"])
    assert result.exit_code == 0 and "(edit 2)" in result.output
    assert int(run(main, ["edits", path]).output.split()[0]) > removed  # template siblings go too
    run(main, ["undo", path])
    result = run(main, ["remove", path, "--quota", "target=100", "--level", "1"])
    assert result.exit_code == 0 and "100 of 400 kept" in result.output
    bad = run(main, ["remove", path, "--quota", "cap=lots"])
    assert bad.exit_code == 1 and "--quota is cap=N" in bad.output
