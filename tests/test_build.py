"""The whole pipeline on 400 real records with the static embedder, and the CLI around it."""

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import SMALL_SETTINGS as SETTINGS
from test_spatial import assert_tiles_are_runs

from atlas.cli import main
from atlas.errors import AtlasError
from atlas.pipeline import run
from atlas.settings import BuildSettings, EmbedSettings


def build(source, out, settings=SETTINGS, **kw):
    return run.build(source, out, settings, quiet=True, log=lambda _: None, **kw)


def test_map_directory_contract(small_map, small_table):
    m = small_map.manifest()
    assert m["records"] == 400 and m["embedder"]["dim"] == 256 and m["levels"] == 2
    assert set(m["stages"]) >= {"ingest", "embed", "neighbors", "project", "cluster", "keywords", "dedup"}
    records = small_map.records()
    assert records.column_names == small_table.column_names + ["id"]
    assert records.drop_columns(["id"]).equals(small_table)
    points = small_map.points()
    schema = {f.name: str(f.type) for f in points.schema}
    assert schema == {"id": "string", "row": "int64", "x": "float", "y": "float", "topic_0": "int32",
                      "topic_1": "int32", "outlier": "bool", "text_len": "int32", "empty": "bool",
                      "dup_group": "int64", "dup_kind": "string", "dup_survivor": "bool",
                      "morton": "uint32"}
    assert sorted(points.column("row").to_pylist()) == list(range(400))
    assert (np.diff(points.column("morton").to_numpy().astype(np.int64)) >= 0).all()
    assert_tiles_are_runs(small_map, range(1, 9))
    rows = points.column("row").to_numpy()
    assert points.column("id").to_pylist() == np.array(records.column("id").to_pylist())[rows].tolist()
    emb = small_map.embeddings()
    assert emb.shape == (400, 256) and emb.dtype == np.float16
    topics = small_map.topics()
    assert topics.column_names == ["topic_id", "level", "parent_id", "keyword_label", "keywords", "size", "x", "y",
                                   "label", "description", "label_source"]
    level0 = topics.filter(pa.compute.equal(topics["level"], 0))
    assert sum(level0.column("size").to_pylist()) == 400
    assert all(level0.column("parent_id").is_null().to_pylist())


def test_search_index_rowids_are_map_positions(small_map):
    """Each FTS hit is the map position of a text holding the word, and every such text is a hit;
    the texts go in map order a batch at a time."""
    from contextlib import closing

    from atlas.records import iter_texts
    from atlas.schema import SEARCH_TABLE

    column = small_map.records().column("description")
    order = small_map.points(["row"]).column("row").to_numpy()
    in_map_order = column.take(pa.array(order)).to_pylist()
    assert list(iter_texts(column, order, batch=64)) == in_map_order
    for word in ("perl", "library", "documentation"):
        with closing(small_map.search_index()) as db:
            hits = sorted(r for (r,) in db.execute(f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH ?",
                                                   (word,)))
        holding = [i for i, t in enumerate(in_map_order) if word in re.split(r"[^a-z0-9]+", t.lower())]
        assert len(hits) > 3 and hits == holding


def test_duplicates_in_points_are_consistent(small_map):
    p = small_map.points(["dup_group", "dup_kind", "dup_survivor"])
    group = p.column("dup_group").fill_null(-1).to_numpy()
    kind = np.array(p.column("dup_kind").to_pylist(), dtype=object)
    survivor = p.column("dup_survivor").to_numpy()
    assert (group >= 0).sum() > 0
    assert (np.bincount(group[group >= 0], weights=survivor[group >= 0]) >= 1).all()  # no chains: maybe several
    assert all(k is None for k in kind[group < 0]) and survivor[group < 0].all()
    assert set(kind[group >= 0]) <= {"exact", "near", "semantic", "template"}
    assert survivor[kind == "template"].all()  # template siblings stay unless asked for


def test_refuses_other_source_and_keeps_previous_map(tmp_path, small_table):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(small_table.slice(0, 200), first)
    pq.write_table(small_table.slice(200, 200), second)
    out = tmp_path / "map"
    build(first, out)
    before = (out / "manifest.json").read_text()
    with pytest.raises(AtlasError, match="another source"):
        build(second, out)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(AtlasError):
        build(bad, out, force=True)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet", "bad.parquet", "map"]
    build(second, out, force=True)
    assert json.loads((out / "manifest.json").read_text())["source"]["path"].endswith("b.parquet")


def test_interrupted_build_resumes_from_saved_chunks(tmp_path, small_table, monkeypatch):
    source = tmp_path / "d.parquet"
    pq.write_table(small_table, source)
    settings = BuildSettings(text_columns=("description",), seed=42,
                             embed=EmbedSettings(embedder="static", chunk_size=100))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "project", crash)
    with pytest.raises(KeyboardInterrupt):
        build(source, tmp_path / "map", settings)
    assert not (tmp_path / "map").exists()
    chunks = sorted((tmp_path / ".map.partial" / "embedding_chunks").glob("0*.npy"))
    assert len(chunks) == 4
    monkeypatch.undo()
    embedded = []
    monkeypatch.setattr(run, "EncodeTexts", lambda *args: embedded.append(args))
    result = build(source, tmp_path / "map", settings)
    assert embedded == []  # every chunk came from disk: no embedding task was made
    assert result.manifest()["records"] == 400
    assert not (tmp_path / ".map.partial").exists()


def test_same_seed_same_map(tmp_path, small_parquet, small_map):
    again = build(small_parquet, tmp_path / "again")
    assert again.points().equals(small_map.points())
    assert again.topics().equals(small_map.topics())
    assert again.dup_pairs().equals(small_map.dup_pairs())
    assert np.array_equal(again.embeddings(), small_map.embeddings())
    assert all(np.array_equal(a, b) for a, b in zip(again.neighbors(), small_map.neighbors()))
    varies = {"build_id", "created", "source", "stages", "total_seconds"}  # which build, when, from where, how long
    first, second = small_map.manifest(), again.manifest()
    assert {k: v for k, v in second.items() if k not in varies} == {k: v for k, v in first.items() if k not in varies}
    assert second["source"]["hash"] == first["source"]["hash"]


def test_cli_build_info_and_errors(tmp_path, small_parquet):
    runner = CliRunner()
    out = tmp_path / "cli_map"
    result = runner.invoke(main, ["build", str(small_parquet), "--text", "description", "--id", "package",
                                  "--embedder", "static", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(main, ["info", str(out)])
    assert info.exit_code == 0 and "400" in info.output and "duplicates" in info.output
    bad = runner.invoke(main, ["build", str(small_parquet), "--text", "descripton", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1
    assert "column 'descripton' not found; columns are: package" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "x").exists()
    assert runner.invoke(main, ["info", str(tmp_path)]).exit_code == 1
