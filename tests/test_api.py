"""atlas.build / atlas.open / Map: the Python API over the functions the CLI and the server call."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import SMALL_SETTINGS

import atlas
from atlas.cli import main
from atlas.errors import AtlasError
from atlas.server.app import create_app

SMALL = dict(id="package", seed=SMALL_SETTINGS.seed, embed=SMALL_SETTINGS.embed, label=SMALL_SETTINGS.label)


@pytest.fixture(scope="module")
def from_pandas(tmp_path_factory, small_table) -> atlas.Map:
    out = tmp_path_factory.mktemp("pandas") / "map"
    return atlas.build(small_table.to_pandas(), text="description", out=out, quiet=True, **SMALL)


@pytest.fixture
def edited(tmp_path, from_pandas) -> atlas.Map:
    """A copy of the map built from pandas, with its own empty edit log."""
    return atlas.open(shutil.copytree(from_pandas.path, tmp_path / "map"))


def test_import_atlas_loads_no_heavy_module():
    code = "import sys, atlas; print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'torch') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert {"build", "open", "Map"} <= set(dir(atlas))


def test_a_dataframe_and_an_arrow_table_give_the_map_the_cli_builds(from_pandas, small_map, small_table, tmp_path):
    from_arrow = atlas.build(small_table, text=["description"], out=tmp_path / "arrow", quiet=True, **SMALL)
    source = tmp_path / "arrow.source.parquet"
    assert from_arrow.manifest["source"]["path"] == str(source.resolve())
    assert pq.read_table(source).equals(small_table)
    for built in (from_pandas, from_arrow):
        assert built.manifest["settings"] == small_map.manifest()["settings"]
        assert built.topics[["label", "size"]].equals(atlas.open(small_map.path).topics[["label", "size"]])
        assert built.records["package"].tolist() == small_table.column("package").to_pylist()
    assert from_pandas.records.columns.tolist() == [*small_table.column_names, "id"]
    with pytest.raises(AtlasError, match="holds a map of another source"):
        atlas.build(small_table.slice(0, 200), text="description", out=tmp_path / "arrow", quiet=True, **SMALL)
    assert pq.read_table(source).equals(small_table)  # the map's source stays
    atlas.build(small_table.slice(0, 200), text="description", out=tmp_path / "arrow", force=True, quiet=True,
                **SMALL)
    assert len(from_arrow.records) == 200 and from_arrow.manifest["records"] == 200  # read again after a rebuild


def test_topics_table(from_pandas):
    topics, levels = from_pandas.topics, from_pandas.manifest["levels"]
    assert topics.columns.tolist() == ["topic_id", "level", "parent_id", "label", "description", "label_source",
                                       "keywords", "size", "kept"]
    assert topics["topic_id"].tolist() == list(range(len(topics)))
    assert topics.groupby("level").size().tolist() == from_pandas.manifest["topics_per_level"]
    assert topics.groupby("level")["size"].sum().tolist() == [400] * levels
    assert (topics["kept"] == topics["size"]).all() and (topics["label_source"] == "keywords").all()
    coarse = topics[topics["level"] == 0]
    assert coarse["parent_id"].isna().all()
    finer = topics[topics["level"] > 0]
    assert set(finer["parent_id"]) <= set(coarse["topic_id"]) and str(finer["parent_id"].dtype) == "Int32"


def test_points_records_search_and_neighbors(from_pandas, small_table):
    points = from_pandas.points
    assert points["id"].tolist() == small_table.column("package").to_pylist()  # input order, as records
    assert points.columns.tolist()[:3] == ["id", "x", "y"] and {"topic_0", "topic_1", "dup_kind"} <= set(points)
    assert not points["removed"].any() and points["tags"].map(len).sum() == 0
    assert points["dup_group"].notna().sum() == from_pandas.manifest["duplicates"]["records_in_groups"]
    found = from_pandas.search("perl", limit=5)
    assert len(found) == 5 and found["snippet"].str.lower().str.contains("perl").all()
    assert found["score"].is_monotonic_decreasing
    first = points["id"][0]
    near = from_pandas.neighbors(first, k=4)
    assert len(near) == 4 and first not in set(near["id"]) and near["similarity"].is_monotonic_decreasing
    with pytest.raises(AtlasError, match="no record with id 'nope'"):
        from_pandas.neighbors("nope")
    with pytest.raises(AtlasError, match="search mode is keyword or semantic"):
        from_pandas.search("perl", mode="fuzzy")


def test_edits_through_the_api_reach_the_cli_and_the_server(edited, local_client):
    path = str(edited.path)
    topic = edited.topics.iloc[0]
    entry = edited.remove(topic=int(topic["topic_id"]), reason="junk")
    assert entry.count == topic["size"]
    tagged = edited.tag("short", where="text_len < 100")
    assert tagged.count == (edited.points["text_len"] < 100).sum()
    listing = CliRunner().invoke(main, ["edits", path]).output.splitlines()
    assert listing[0] == f"{entry.count} of 400 records removed"
    assert listing[1] == f"tag short: {tagged.count} records"
    assert "junk" in listing[2]
    state = local_client(create_app(edited.path)).get("/api/state").json()
    assert (state["removed"], state["tags"]) == (entry.count, {"short": tagged.count})
    topics = edited.topics
    assert topics.loc[topic["topic_id"], "kept"] == 0
    assert topics.loc[topics["parent_id"] == topic["topic_id"], "kept"].sum() == 0
    assert edited.undo().target == tagged.seq and edited.redo().target == tagged.seq
    assert edited.edits["in_force"].tolist() == [True, True, False, False]


def test_edits_from_the_cli_and_the_server_reach_the_api(edited, local_client):
    path = str(edited.path)
    assert CliRunner().invoke(main, ["tag", path, "perl", "--where", 'search ~ "perl"']).exit_code == 0
    tagged = edited.points["tags"].map(lambda tags: "perl" in tags)
    assert tagged.sum() == len(edited.filter('tag = "perl"')) > 0
    client = local_client(create_app(edited.path))
    response = client.post("/api/edits", json={"action": "remove", "predicate": {"select": [{"topic": 0}]}})
    removed = response.json()["edit"]["count"]
    assert edited.points["removed"].sum() == removed and len(edited.export()) == 400 - removed
    assert CliRunner().invoke(main, ["undo", path]).exit_code == 0
    assert not edited.points["removed"].any()
    assert edited.redo().count == removed
    with pytest.raises(AtlasError, match="nothing to redo"):
        edited.redo()


def test_export_counts_and_formats(edited, tmp_path):
    removable = edited.manifest["duplicates"]["removable"]
    assert edited.remove(duplicates=True, reason="dups").count == removable
    short = edited.filter("text_len < 200")  # removed records too
    cli = CliRunner().invoke(main, ["export", str(edited.path), "--out", str(tmp_path / "short.parquet"),
                                    "--where", "text_len < 200", "--include-removed"])
    assert cli.output.startswith(f"wrote {len(short)} records") and 0 < len(short) < 400
    assert short.columns.tolist() == edited.records.columns.tolist()
    clean = edited.export()
    assert len(clean) == 400 - removable and "id" not in clean  # the input's own columns only
    assert clean.columns.tolist() == edited.records.columns.drop("id").tolist()
    arrow = edited.export(where="text_len < 200", extras=["tags", "dup"], arrow=True)
    assert arrow.num_rows == len(edited.filter("text_len < 200 and removed = false"))
    assert "atlas_dup_group" in arrow.column_names
    assert edited.export(tmp_path / "clean.parquet") == 400 - removable == pq.read_metadata(
        tmp_path / "clean.parquet").num_rows
    cli = CliRunner().invoke(main, ["export", str(edited.path), "--out", str(tmp_path / "cli.parquet")])
    assert cli.output.strip() == f"wrote {400 - removable} records to {tmp_path / 'cli.parquet'}"
    assert edited.remove(quota={"target": 100, "level": 0}).count == 400 - removable - 100
    assert len(edited.export()) == 100 and edited.report(tmp_path / "r.html")["records"]["after"] == 100
    assert edited.restore(all=True).count == 300 and len(edited.export()) == 400


def test_remove_and_settings_errors_name_the_choices(edited, small_table):
    with pytest.raises(AtlasError, match="remove needs one of topic / where, duplicates or quota"):
        edited.remove(topic=0, duplicates=True)
    with pytest.raises(AtlasError, match="choose the records with topic"):
        edited.tag("x")
    with pytest.raises(AtlasError, match=r"quota: unknown setting\(s\) cop; allowed: level, seed, cap"):
        edited.remove(quota={"cop": 3})
    with pytest.raises(AtlasError, match="unknown setting 'colour'; allowed: .*embedder.*min_cluster_size"):
        atlas.build(small_table, text="description", colour="red")
    with pytest.raises(AtlasError, match="labels is one of llm, keywords, not 'gpt'"):
        atlas.build(small_table, text="description", labels="gpt")
    with pytest.raises(AtlasError, match="seed takes int or None, not '42'"):
        atlas.build(small_table, text="description", seed="42")
    with pytest.raises(AtlasError, match="^min_cluster_size is at least 2, not -5$"):
        atlas.build(small_table, text="description", min_cluster_size=-5)
    with pytest.raises(AtlasError, match="^llm_contexts is at least 1, not 0$"):
        atlas.build(small_table, text="description", llm_contexts=0)
    with pytest.raises(AtlasError, match="data is a file path, a pandas or polars DataFrame.*not builtins.list"):
        atlas.build([{"description": "x"}], text="description")
    with pytest.raises(AtlasError, match="not an Atlas map"):
        atlas.open(edited.path / "topics.parquet")
    assert edited.edits.empty  # nothing was written


def http(url: str, method: str = "GET", **headers) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request over real HTTP."""
    request = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_serve_answers_over_http_with_the_servers_security_and_show_frames_it(edited):
    url = edited.serve()
    try:
        assert url.startswith("http://127.0.0.1:") and edited.serve() == url
        status, _, body = http(url + "api/map")
        assert status == 200 and json.loads(body)["records"] == 400
        status, headers, page = http(url)
        assert "vendor/leaflet/leaflet.js" in page.decode() and "x-frame-options" not in map(str.lower, headers)
        assert headers["content-security-policy"].endswith(
            "frame-ancestors 'self' http://localhost:* http://127.0.0.1:* https://localhost:* "
            "https://127.0.0.1:* vscode-webview:")
        secret = re.search(r'<meta name="atlas-token" content="([^"]+)">', page.decode()).group(1)
        removed = edited.remove(topic=0).count
        status, _, body = http(url + "api/state")
        assert json.loads(body)["removed"] == edited.points["removed"].sum() == removed > 0
        json_body = {"Content-Type": "application/json"}
        assert http(url + "api/undo", "POST", **json_body)[0] == 403  # no secret
        assert http(url + "api/map", Host="evil.example")[0] == 403
        status, _, body = http(url + "api/undo", "POST", **json_body, **{"X-Atlas-Token": secret})
        assert status == 200 and json.loads(body)["removed"] == 0 and not edited.points["removed"].any()
        frame = edited.show(height=400)
        assert (frame.src, frame.height) == (url, 400) and f'src="{url}"' in frame._repr_html_()
    finally:
        edited.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "api/map", timeout=5)
