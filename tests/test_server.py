"""The HTTP API, in process, on a small real map."""

import io

import pytest
from PIL import Image

from atlas.server.app import create_app


@pytest.fixture(scope="module")
def client(small_map, local_client):
    return local_client(create_app(small_map.path))


@pytest.fixture(scope="module")
def info(client):
    return client.get("/api/map").json()


def test_map_and_topics(client, info):
    assert info["records"] == 400 and info["levels"] == 2 and len(info["world"]) == 3
    topics = client.get("/api/topics").json()
    assert len(topics) == sum(info["topics_per_level"])
    coarse = [t for t in topics if t["level"] == 0]
    assert abs(sum(t["share"] for t in coarse) - 1) < 1e-9
    assert all(t["color"].startswith("#") and len(t["bbox"]) == 4 for t in topics)
    assert len({t["color"] for t in coarse}) == len(coarse)


def test_tiles_are_png_and_cached(client, small_map):
    response = client.get("/tiles/0/0/0.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (256, 256) and image.mode == "RGBA"
    assert image.getchannel("A").getextrema()[1] > 0  # something is drawn
    again = client.get("/tiles/0/0/0.png", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert any(small_map.tiles_path.rglob("*.png"))
    assert response.headers["etag"].startswith(f'"{client.get("/api/map").json()["build_id"]}-')


def test_deep_tiles_draw_only_their_points(client, info):
    app = client.app
    renderer = app.state.tiles
    z = 3
    total = sum(renderer.rows(z, x, y)[1] - renderer.rows(z, x, y)[0] for x in range(8) for y in range(8))
    assert total == info["records"]  # the tiles of a zoom level partition the points
    empty = [(x, y) for x in range(8) for y in range(8) if renderer.rows(z, x, y)[0] == renderer.rows(z, x, y)[1]]
    x, y = empty[0]
    image = Image.open(io.BytesIO(client.get(f"/tiles/{z}/{x}/{y}.png").content))
    assert image.getchannel("A").getextrema() == (0, 0)


@pytest.mark.parametrize("path", ["/tiles/0/1/0.png", "/tiles/3/8/0.png", "/tiles/17/0/0.png",
                                  "/tiles/-1/0/0.png", "/tiles/2/0/-1.png", "/tiles/99999999999/0/0.png"])
def test_tiles_out_of_range_404(client, path):
    response = client.get(path)
    assert response.status_code == 404 and "error" in response.json()


def test_points_in_box(client, info):
    x0, y0, x1, y1 = info["extent"]
    everything = client.get("/api/points", params=dict(x0=x0 - 100, y0=y0 - 100, x1=x1 + 100, y1=y1 + 100,
                                                        limit=1000)).json()
    assert everything["total"] == 400 and len(everything["points"]) == 400
    p = everything["points"][0]
    assert set(p) == {"id", "x", "y", "topics", "snippet"}
    box = dict(x0=p["x"] - 0.01, y0=p["y"] - 0.01, x1=p["x"] + 0.01, y1=p["y"] + 0.01)
    near = client.get("/api/points", params=box).json()
    assert p["id"] in [q["id"] for q in near["points"]]
    capped = client.get("/api/points", params=dict(x0=x0 - 100, y0=y0 - 100, x1=x1 + 100, y1=y1 + 100,
                                                    limit=10, sample="false")).json()
    assert capped == {"total": 400, "points": []}
    assert client.get("/api/points", params=dict(x0=1, y0=1, x1=0, y1=2)).status_code == 400
    assert client.get("/api/points", params=dict(x0=0, y0=0, x1=1)).status_code == 422


def test_record_with_neighbours(client, small_table):
    package = small_table.column("package")[3].as_py()
    r = client.get(f"/api/records/{package}").json()
    assert r["columns"]["package"] == package
    assert r["text"] == small_table.column("description")[3].as_py()
    assert len(r["topic_path"]) == 2 and r["topic_path"][0]["level"] == 0
    assert len(r["neighbors"]) == 10
    sims = [n["similarity"] for n in r["neighbors"]]
    assert sims == sorted(sims, reverse=True) and sims[0] > 0.5
    assert package not in [n["id"] for n in r["neighbors"]]
    missing = client.get("/api/records/no-such-package")
    assert missing.status_code == 404 and "no-such-package" in missing.json()["error"]


def test_keyword_search(client):
    body = client.get("/api/search", params={"q": "ocaml ldap"}).json()
    assert body["results"] and all("ldap" in r["snippet"].lower() for r in body["results"])
    prefix = client.get("/api/search", params={"q": "serializ"}).json()["results"]
    assert any("serializ" in r["snippet"].lower() for r in prefix)
    assert client.get("/api/search", params={"q": "zzzxqv"}).json()["results"] == []
    assert client.get("/api/search", params={"q": '"; DROP TABLE docs; --'}).status_code == 200


def test_semantic_search(client):
    body = client.get("/api/search", params={"q": "configuration files for python tools",
                                             "mode": "semantic", "limit": 5}).json()
    assert len(body["results"]) == 5
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert any("python" in r["snippet"].lower() for r in body["results"])


@pytest.mark.parametrize("params, status", [({"q": ""}, 422), ({"q": "x", "mode": "fuzzy"}, 422),
                                            ({"q": "x", "limit": 0}, 422), ({"q": "   "}, 400)])
def test_search_parameter_errors(client, params, status):
    response = client.get("/api/search", params=params)
    assert response.status_code == status and "error" in response.json()


def test_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "vendor/leaflet/leaflet.js" in page.text
    assert client.get("/app.js").status_code == 200
    assert client.get("/vendor/leaflet/leaflet.js").status_code == 200


def test_serve_refuses_a_busy_port(small_map):
    import socket

    from click.testing import CliRunner

    from atlas.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", str(small_map.path), "--port", str(port)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is in use; pass another with --port" in result.output


def test_serve_needs_a_map(tmp_path):
    from click.testing import CliRunner

    from atlas.cli import main

    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and "not an Atlas map" in result.output


# ---- curation: a copy of the map, so its edit log starts empty ----

@pytest.fixture(scope="module")
def editing(tmp_path_factory, curation_maps, local_client):
    import shutil

    path = shutil.copytree(curation_maps[0].path, tmp_path_factory.mktemp("edit") / "map")
    return local_client(create_app(path))


def kept(client) -> int:
    return client.get("/api/state").json()["kept"]


def test_state_of_a_fresh_map(editing):
    s = editing.get("/api/state").json()
    assert s["total"] == s["kept"] == 400 and s["removed"] == 0
    assert not s["can_undo"] and not s["can_redo"] and s["log"] == [] and s["edit_seq"] == 0


def test_select_counts_topics_and_sample(editing, info):
    x0, y0, x1, y1 = info["extent"]
    box = [x0, y0, (x0 + x1) / 2, y1]
    s = editing.post("/api/select", json={"steps": [{"op": "replace", "box": box}]}).json()
    assert 0 < s["count"] < 400 and s["kept"] == s["count"]
    assert [t["level"] for t in s["topics"]] == [0, 1]
    assert sum(t["count"] for t in s["topics"][0]["topics"]) == s["count"]
    assert len(s["sample"]) == s["count"] and set(s["sample"][0]) == {"id", "snippet", "x", "y"}
    both = editing.post("/api/select", json={"steps": [{"box": box}, {"op": "add", "box": [x0, y0, x1, y1]}]}).json()
    assert both["count"] == 400
    narrowed = editing.post("/api/select", json={"steps": [{"box": box}], "where": "text_len < 100"}).json()
    assert narrowed["count"] <= s["count"]
    lasso = [[x0 - 1, y0 - 1], [x1 + 1, y0 - 1], [x1 + 1, y1 + 1], [x0 - 1, y1 + 1]]
    assert editing.post("/api/select", json={"steps": [{"polygon": lasso}]}).json()["count"] == 400


def test_filter_histograms(editing):
    f = editing.get("/api/filter", params={"where": "text_len < 300", "level": 1, "column": "section"}).json()
    assert 0 < f["kept"] == f["matched"] < 400
    assert sum(b["count"] for b in f["text_len"]) == f["kept"] and f["text_len"][-1]["hi"] <= 300
    assert f["topics"]["level"] == 1 and sum(t["count"] for t in f["topics"]["topics"]) == f["kept"]
    assert f["column"]["kind"] == "categorical" and sum(v["count"] for v in f["column"]["values"]) <= f["kept"]
    assert {"name": "installed_size_kb", "numeric": True} in f["columns"]
    numeric = editing.get("/api/filter", params={"column": "installed_size_kb"}).json()["column"]
    assert numeric["kind"] == "numeric" and len(numeric["bins"]) == 20


@pytest.mark.parametrize("request_args", [
    ("get", "/api/filter", {"params": {"where": "nope = 1"}}, "unknown column 'nope'"),
    ("get", "/api/filter", {"params": {"where": "text_len <"}}, "filter"),
    ("get", "/api/filter", {"params": {"level": 7}}, "level is 0"),
    ("post", "/api/select", {"json": {"steps": [{"polygon": [[0, 0]]}]}}, "polygon"),
    ("post", "/api/edits", {"json": {"action": "remove", "predicate": {"bogus": 1}}}, "a predicate is"),
    ("post", "/api/edits", {"json": {"action": "tag", "predicate": {"select": [{"topic": 0}]}}}, "tag name"),
    ("get", "/api/duplicates", {"params": {"keep": "random"}}, "survivor rule"),
    ("get", "/api/duplicates", {"params": {"near_threshold": 0.1}}, "thresholds can only be raised"),
    ("post", "/api/balance/preview", {"json": {"cap": 10, "target": 5}}, "exactly one"),
    ("get", "/api/export.parquet", {"params": {"with": "everything"}}, "unknown extra"),
])
def test_bad_requests_are_400_with_the_message(editing, request_args):
    method, url, kwargs, message = request_args
    response = getattr(editing, method)(url, **kwargs)
    assert response.status_code == 400 and message in response.json()["error"]


def test_edit_undo_redo_and_tiles(editing):
    before = editing.get("/tiles/0/0/0.png")
    s = editing.post("/api/edits", json={"action": "remove", "predicate": {"select": [{"topic": 0}]},
                                         "reason": "junk"}).json()
    assert s["edit"]["count"] > 0 and s["kept"] == 400 - s["edit"]["count"] and s["can_undo"]
    assert s["log"][0]["reason"] == "junk" and s["log"][0]["in_force"]
    after = editing.get("/tiles/0/0/0.png")
    assert after.headers["etag"] != before.headers["etag"] and after.content != before.content
    filtered = editing.get("/tiles/0/0/0.png", params={"where": "text_len < 100"})
    assert filtered.headers["etag"] not in (before.headers["etag"], after.headers["etag"])
    assert editing.get("/api/filter", params={"where": "removed = true"}).json()["matched"] == s["removed"]
    undone = editing.post("/api/undo").json()
    assert undone["kept"] == 400 and undone["can_redo"] and undone["edit_seq"] == s["edit_seq"] + 1
    assert editing.get("/tiles/0/0/0.png").content == before.content
    assert editing.post("/api/redo").json()["kept"] == s["kept"]
    tagged = editing.post("/api/edits", json={"action": "tag", "tag": "look", "predicate": {"select": [{"topic": 1}]}})
    assert tagged.json()["tags"]["look"] > 0
    for _ in range(2):
        editing.post("/api/undo")
    assert kept(editing) == 400
    while editing.post("/api/undo").status_code == 200:
        pass
    assert editing.post("/api/undo").json()["error"] == "nothing to undo"


def test_two_tabs_editing_at_once_both_land(editing):
    from concurrent.futures import ThreadPoolExecutor

    def remove(topic):
        return editing.post("/api/edits", json={"action": "remove", "predicate": {"select": [{"topic": topic}]}})

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(remove, [0, 1]))
    assert all(r.status_code == 200 for r in responses)
    sizes = sum(r.json()["edit"]["count"] for r in responses)
    assert kept(editing) == 400 - sizes
    editing.post("/api/undo")
    editing.post("/api/undo")
    assert kept(editing) == 400


def test_an_edit_from_elsewhere_shows_at_once(editing):
    from atlas.curation import Curation

    other = Curation(editing.app.state.data.mapdir.path)  # the CLI, or another server
    entry = other.edit("remove", {"select": [{"topic": 0}]})
    assert kept(editing) == 400 - entry.count
    other.undo()
    assert kept(editing) == 400


def test_duplicates_groups_and_removal(editing):
    d = editing.get("/api/duplicates", params={"limit": 5}).json()
    assert d["groups"] > 0 and len(d["largest"]) <= 5 and d["removable"] == d["removable_kept"] > 0
    sizes = [g["size"] for g in d["largest"]]
    assert sizes == sorted(sizes, reverse=True)
    stricter = editing.get("/api/duplicates", params={"near_threshold": 0.99, "semantic_threshold": 0.999}).json()
    assert stricter["groups"] <= d["groups"]
    group = editing.get(f"/api/duplicates/{d['largest'][0]['group']}").json()
    members = group["members"]
    assert len(members) == d["largest"][0]["size"]
    assert members[0]["survivor"] and sum(m["survivor"] for m in members) == 1
    other = members[1]["id"]
    chosen = editing.get(f"/api/duplicates/{group['group']}", params={"prefer": other}).json()["members"]
    assert chosen[0]["id"] == other and chosen[0]["survivor"]
    assert editing.get("/api/duplicates/99999").status_code == 404
    s = editing.post("/api/edits", json={"action": "remove", "predicate": {"duplicates": {"keep": "longest",
                                                                                         "prefer": [other]}}}).json()
    assert s["removed"] == d["removable"]
    removed = editing.get(f"/api/duplicates/{group['group']}").json()["members"]
    assert {m["id"] for m in removed if not m["removed"]} == {other}
    editing.post("/api/undo")


def test_balance_and_quota_preview(editing):
    b = editing.get("/api/balance", params={"level": 0}).json()
    assert b["kept"] == 400 and abs(sum(t["share"] for t in b["topics"]) - 1) < 1e-3
    biggest = b["topics"][0]["count"]
    p = editing.post("/api/balance/preview", json={"level": 0, "cap": biggest - 5, "seed": 1}).json()
    assert p["before"] == 400 and p["remove"] == p["before"] - p["after"] >= 5
    assert max(t["after"] for t in p["topics"]) == biggest - 5
    s = editing.post("/api/edits", json={"action": "remove", "predicate": {"quota": {"level": 0, "cap": biggest - 5,
                                                                                    "seed": 1}}}).json()
    assert s["removed"] == p["remove"]
    editing.post("/api/undo")


def test_export_download_and_report(editing, small_table):
    import pyarrow.parquet as pq

    short = {"select": [{"where": "text_len < 150"}]}
    s = editing.post("/api/edits", json={"action": "remove", "predicate": short}).json()
    response = editing.get("/api/export.parquet")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == int(response.headers["x-atlas-rows"]) == s["kept"]
    assert table.schema.names == small_table.schema.names
    filtered = editing.get("/api/export.parquet", params={"where": "text_len > 400", "with": "tags,dup"})
    table = pq.read_table(io.BytesIO(filtered.content))
    assert table.num_rows == editing.get("/api/filter", params={"where": "text_len > 400"}).json()["kept"]
    assert "atlas_tags" in table.schema.names
    everything = editing.get("/api/export.parquet", params={"include_removed": "true"})
    assert everything.headers["x-atlas-rows"] == "400"
    report = editing.get("/api/report")
    assert report.status_code == 200 and report.text.startswith("<!doctype html")
    assert "data:image/png;base64" in report.text
    editing.post("/api/undo")
