"""The HTTP API, in process, on a small real map. Each test gets its own copy of the map (its own
edit log and tile cache), so no test depends on another or on their order. Expected values are
computed here from the map's tables with numpy, not by the code under test."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from atlas.server.app import create_app


@pytest.fixture
def client(curated, local_client):
    return local_client(create_app(curated.path))


@pytest.fixture
def info(client):
    return client.get("/api/map").json()


@pytest.fixture
def points(curated):
    """The map's points as numpy columns, with each record's topic at every level."""
    table = curated.points()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def count_topics(topics: np.ndarray) -> dict[int, int]:
    ids, counts = np.unique(topics, return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist()))


def by_topic(breakdown: dict) -> dict[int, int]:
    """{topic id: count} of a per-topic breakdown the API returns."""
    return {t["topic_id"]: t["count"] for t in breakdown["topics"]}


def in_topic(points, topic: int) -> np.ndarray:
    """What `{"topic": id}` selects: the topic at its own level, subtopics included (ids are unique across levels)."""
    return np.any([points[name] == topic for name in points if name.startswith("topic_")], axis=0)


def test_map_and_topics(client, info, curated):
    levels = curated.manifest()["levels"]
    assert info["records"] == 400 and info["levels"] == levels and len(info["world"]) == 3
    topics = client.get("/api/topics").json()
    table = curated.topics()
    assert [t["topic_id"] for t in topics] == table["topic_id"].to_pylist()
    assert [t["size"] for t in topics] == table["size"].to_pylist()
    assert info["topics_per_level"] == np.bincount(table["level"].to_numpy(), minlength=levels).tolist()
    coarse = [t for t in topics if t["level"] == 0]
    assert abs(sum(t["share"] for t in coarse) - 1) < 1e-9
    assert all(t["color"].startswith("#") and len(t["bbox"]) == 4 for t in topics)
    assert len({t["color"] for t in coarse}) == len(coarse)


def test_tiles_are_png_and_cached(client, curated):
    response = client.get("/tiles/0/0/0.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (256, 256) and image.mode == "RGBA"
    assert image.getchannel("A").getextrema()[1] > 0  # something is drawn
    again = client.get("/tiles/0/0/0.png", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert any(curated.tiles_path.rglob("*.png"))
    assert response.headers["etag"].startswith(f'"{client.get("/api/map").json()["build_id"]}-')


def test_deep_tiles_draw_only_their_points(client, info, points):
    renderer = client.app.state.tiles
    runs = [renderer.rows(3, x, y) for x in range(8) for y in range(8)]
    assert sum(hi - lo for lo, hi in runs) == info["records"]  # the tiles of a zoom level partition the points
    # a zoom-6 tile with no point in it or beside it (400 points cannot fill 4,096 tiles) is drawn empty
    x0, y0, size = info["world"]
    cells = np.floor((np.stack([points["x"], points["y"]], axis=1) - (x0, y0)) / size * 64).astype(int).tolist()
    near = {(cx + dx, 63 - cy - dy) for cx, cy in cells for dx in (-1, 0, 1) for dy in (-1, 0, 1)}  # y from the top
    x, y = next((x, y) for x in range(64) for y in range(64) if (x, y) not in near)
    image = Image.open(io.BytesIO(client.get(f"/tiles/6/{x}/{y}.png").content))
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


@pytest.mark.parametrize("options, message", [
    (("--port", "70000"), "--port is 0 to 65535 (0: any free port), not 70000"),
    (("--port", "-1"), "--port is 0 to 65535 (0: any free port), not -1"),
    (("--host", "nowhere.invalid"),
     "--host nowhere.invalid: no such host name; pass a name or address of this machine (127.0.0.1, 0.0.0.0)"),
])
def test_serve_names_the_option_it_cannot_bind(small_map, options, message):
    from click.testing import CliRunner

    from atlas.cli import main

    result = CliRunner().invoke(main, ["serve", str(small_map.path), "--no-auth", *options])
    assert (result.exit_code, result.output.splitlines()[-1]) == (1, f"error: {message}")


def test_serve_needs_a_map(tmp_path):
    from click.testing import CliRunner

    from atlas.cli import main

    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and "not an Atlas map" in result.output


# ---- curation ----

def kept(client) -> int:
    return client.get("/api/state").json()["kept"]


def test_state_of_a_fresh_map(client):
    s = client.get("/api/state").json()
    assert s["total"] == s["kept"] == 400 and s["removed"] == 0
    assert not s["can_undo"] and not s["can_redo"] and s["log"] == [] and s["edit_seq"] == 0


def test_select_counts_topics_and_sample(client, info, points):
    x0, y0, x1, y1 = info["extent"]
    box = [x0, y0, (x0 + x1) / 2, y1]
    x, y = points["x"], points["y"]
    in_box = (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])
    s = client.post("/api/select", json={"steps": [{"op": "replace", "box": box}]}).json()
    assert s["count"] == s["kept"] == in_box.sum()
    for breakdown, level in zip(s["topics"], [0, info["levels"] - 1], strict=True):
        assert breakdown["level"] == level
        assert by_topic(breakdown) == count_topics(points[f"topic_{level}"][in_box])
    assert sorted(p["id"] for p in s["sample"]) == sorted(points["id"][in_box].tolist())
    both = client.post("/api/select", json={"steps": [{"box": box}, {"op": "add", "box": [x0, y0, x1, y1]}]}).json()
    assert both["count"] == (in_box | ((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))).sum()
    short = points["text_len"] < 100
    narrowed = client.post("/api/select", json={"steps": [{"box": box}], "where": "text_len < 100"}).json()
    assert narrowed["count"] == (in_box & short).sum() < in_box.sum()
    cut = client.post("/api/select", json={"steps": [{"box": box}, {"op": "subtract", "where": "text_len < 100"}]})
    assert cut.json()["count"] == (in_box & ~short).sum()
    lasso = [[x0 - 1, y0 - 1], [x1 + 1, y0 - 1], [x1 + 1, y1 + 1], [x0 - 1, y1 + 1]]
    inside = (x >= x0 - 1) & (x <= x1 + 1) & (y >= y0 - 1) & (y <= y1 + 1)
    assert client.post("/api/select", json={"steps": [{"polygon": lasso}]}).json()["count"] == inside.sum()


def test_filter_histograms(client, curated, points):
    import collections

    short = points["text_len"] < 300
    f = client.get("/api/filter", params={"where": "text_len < 300", "level": 1, "column": "section"}).json()
    assert f["kept"] == f["matched"] == short.sum() < 400
    assert sum(b["count"] for b in f["text_len"]) == f["kept"] and f["text_len"][-1]["hi"] <= 300
    assert f["topics"]["level"] == 1 and by_topic(f["topics"]) == count_topics(points["topic_1"][short])
    section = curated.records(["section"]).column("section").take(points["row"]).to_numpy(zero_copy_only=False)
    common = collections.Counter(section[short].tolist()).most_common()
    assert f["column"]["kind"] == "categorical" and f["column"]["distinct"] == len(common)
    assert [v["count"] for v in f["column"]["values"]] == [n for _, n in common[:15]]
    assert all(v["count"] == dict(common)[v["value"]] for v in f["column"]["values"])
    assert {"name": "installed_size_kb", "numeric": True} in f["columns"]
    numeric = client.get("/api/filter", params={"column": "installed_size_kb"}).json()["column"]
    assert numeric["kind"] == "numeric" and len(numeric["bins"]) == 20
    assert sum(b["count"] for b in numeric["bins"]) + numeric["missing"] == 400


@pytest.mark.parametrize("request_args", [
    ("get", "/api/filter", {"params": {"where": "nope = 1"}}, "unknown column 'nope'"),
    ("get", "/api/filter", {"params": {"where": "text_len <"}}, "filter"),
    ("get", "/api/filter", {"params": {"level": 7}}, "level is 0"),
    ("post", "/api/select", {"json": {"steps": [{"polygon": [[0, 0]]}]}}, "polygon"),
    ("post", "/api/edits", {"json": {"action": "remove", "predicate": {"bogus": 1}}}, "a predicate is"),
    ("post", "/api/edits", {"json": {"action": "tag", "predicate": {"select": [{"topic": 0}]}}}, "tag name"),
    ("get", "/api/duplicates", {"params": {"keep": "random"}}, "survivor rule"),
    ("get", "/api/duplicates", {"params": {"near_threshold": 0.1}}, "thresholds can only be raised"),
    ("get", "/api/duplicates", {"params": {"kinds": "near,copies"}}, "duplicate kinds are one or more of"),
    ("post", "/api/balance/preview", {"json": {"cap": 10, "target": 5}}, "exactly one"),
    ("get", "/api/export.parquet", {"params": {"with": "everything"}}, "unknown extra"),
])
def test_bad_requests_are_400_with_the_message(client, request_args):
    method, url, kwargs, message = request_args
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == 400 and message in response.json()["error"]
    assert kept(client) == 400 and client.get("/api/state").json()["log"] == []  # nothing was written


def test_edit_undo_redo_and_tiles(client, points):
    before = client.get("/tiles/0/0/0.png")
    first = in_topic(points, 0)
    s = client.post("/api/edits", json={"action": "remove", "predicate": {"select": [{"topic": 0}]},
                                        "reason": "junk"}).json()
    assert s["edit"]["count"] == s["removed"] == first.sum() and s["kept"] == 400 - first.sum() and s["can_undo"]
    assert s["log"][0]["reason"] == "junk" and s["log"][0]["in_force"]
    after = client.get("/tiles/0/0/0.png")
    assert after.headers["etag"] != before.headers["etag"] and after.content != before.content
    filtered = client.get("/tiles/0/0/0.png", params={"where": "text_len < 100"})
    assert filtered.headers["etag"] not in (before.headers["etag"], after.headers["etag"])
    assert client.get("/api/filter", params={"where": "removed = true"}).json()["matched"] == first.sum()
    undone = client.post("/api/undo").json()
    assert undone["kept"] == 400 and undone["can_redo"] and not undone["can_undo"]
    assert undone["edit_seq"] == s["edit_seq"] + 1
    assert client.get("/tiles/0/0/0.png").content == before.content
    assert client.post("/api/redo").json()["kept"] == s["kept"]
    tagged = client.post("/api/edits", json={"action": "tag", "tag": "look", "predicate": {"select": [{"topic": 1}]}})
    assert tagged.json()["tags"] == {"look": in_topic(points, 1).sum()}
    assert client.post("/api/undo").json()["tags"] == {}
    last = client.post("/api/undo").json()
    assert last["kept"] == 400 and not last["can_undo"] and last["can_redo"]
    nothing = client.post("/api/undo")
    assert nothing.status_code == 400 and nothing.json()["error"] == "nothing to undo"


def test_two_tabs_editing_at_once_both_land(client, points):
    from concurrent.futures import ThreadPoolExecutor

    def remove(topic):
        return client.post("/api/edits", json={"action": "remove", "predicate": {"select": [{"topic": topic}]}})

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(remove, [0, 1]))
    assert [r.status_code for r in responses] == [200, 200]
    assert sorted(r.json()["edit"]["seq"] for r in responses) == [1, 2]
    assert kept(client) == 400 - (in_topic(points, 0) | in_topic(points, 1)).sum()


def test_an_edit_from_elsewhere_shows_at_once(client, curated, points):
    from atlas.curation import Curation

    other = Curation(curated)  # the CLI, or another server
    entry = other.edit("remove", {"select": [{"topic": 0}]})
    assert entry.count == in_topic(points, 0).sum() and kept(client) == 400 - entry.count
    other.undo()
    assert kept(client) == 400


def stored_pairs(mapdir, near: float, semantic: float, kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the stored pairs of `kinds` that pass the thresholds (template pairs: all)."""
    import pyarrow.compute as pc

    pairs = mapdir.dup_pairs()
    kind = pc.cast(pairs["kind"], "string").to_numpy(zero_copy_only=False)
    similarity = pairs["similarity"].to_numpy()
    keep = np.isin(kind, kinds) & ((kind == "exact") | (kind == "template") | ((kind == "near") & (similarity >= near))
                                   | ((kind == "semantic") & (similarity >= semantic)))
    return pairs["a"].to_numpy()[keep], pairs["b"].to_numpy()[keep]


def group_sizes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Group sizes, biggest first: connected components of the pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, component = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(400, 400)), directed=False)
    sizes = np.bincount(component)
    return np.sort(sizes[sizes > 1])[::-1]


def greedy_removal(points, a: np.ndarray, b: np.ndarray, first: int | None = None) -> set[int]:
    """Reference: records by longest text (then input row; `first` before all); each one not yet
    taken is kept and takes the records paired directly with it."""
    neighbours = {}
    for x, y in zip(a.tolist(), b.tolist()):
        neighbours.setdefault(x, set()).add(y)
        neighbours.setdefault(y, set()).add(x)
    order = sorted(range(400), key=lambda p: (p != first, -points["text_len"][p], points["row"][p]))
    taken, removed = set(), set()
    for p in order:
        if p not in taken:
            taken.add(p)
            fresh = neighbours.get(p, set()) - taken
            removed |= fresh
            taken |= fresh
    return removed


def test_duplicates_groups_and_removal(client, curated, points):
    built = curated.manifest()["settings"]["dedup"]
    near, semantic = built["near_threshold"], built["semantic_threshold"]
    default = client.get("/api/duplicates").json()
    assert default["kinds"] == ["exact", "near", "semantic"] and default["pairs_by_kind"]["template"] > 0
    assert default["groups"] == len(group_sizes(*stored_pairs(curated, near, semantic, ("exact", "near", "semantic"))))
    every = ("exact", "near", "semantic", "template")  # the 400 records' pairs are mostly template pairs
    a, b = stored_pairs(curated, near, semantic, every)
    expected = group_sizes(a, b)
    d = client.get("/api/duplicates", params={"limit": 5, "kinds": ",".join(every)}).json()
    assert d["groups"] == len(expected) and d["records"] == expected.sum()
    assert d["removable"] == d["removable_kept"] == len(greedy_removal(points, a, b))  # no chains
    assert [g["size"] for g in d["largest"]] == expected[:5].tolist()
    group = client.get(f"/api/duplicates/{d['largest'][0]['group']}", params={"kinds": every}).json()
    members = group["members"]
    kept = {m["id"] for m in members if m["survivor"]}
    assert len(members) == expected[0] and members[0]["survivor"] and not members[-1]["survivor"]
    assert max(members, key=lambda m: m["text_len"])["survivor"]  # the longest text is taken first: kept
    assert all(m["replaced_by"]["id"] in kept and m["replaced_by"]["kind"] in every
               for m in members if not m["survivor"])
    other = members[-1]["id"]
    chosen = client.get(f"/api/duplicates/{group['group']}", params={"prefer": other, "kinds": every}).json()
    assert other in {m["id"] for m in chosen["members"] if m["survivor"]}
    assert client.get("/api/duplicates/99999").status_code == 404
    rule = {"keep": "longest", "prefer": [other], "kinds": list(every)}
    s = client.post("/api/edits", json={"action": "remove", "predicate": {"duplicates": rule}}).json()
    ids = curated.points(["id"]).column("id").to_pylist()
    assert s["removed"] == len(greedy_removal(points, a, b, first=ids.index(other)))
    removed = client.get(f"/api/duplicates/{group['group']}", params={"kinds": every}).json()["members"]
    assert {m["id"] for m in removed if not m["removed"]} == {m["id"] for m in chosen["members"] if m["survivor"]}


def test_balance_and_quota_preview(client, points):
    sizes = np.bincount(points["topic_0"])
    b = client.get("/api/balance", params={"level": 0}).json()
    assert b["kept"] == 400 and [t["count"] for t in b["topics"]] == sorted(sizes[sizes > 0].tolist(), reverse=True)
    cap = int(sizes.max()) - 5
    over = np.maximum(sizes - cap, 0).sum()
    p = client.post("/api/balance/preview", json={"level": 0, "cap": cap, "seed": 1}).json()
    assert p["before"] == 400 and p["after"] == 400 - over and p["remove"] == over
    assert max(t["after"] for t in p["topics"]) == cap
    s = client.post("/api/edits", json={"action": "remove", "predicate": {"quota": {"level": 0, "cap": cap,
                                                                                   "seed": 1}}}).json()
    assert s["removed"] == over
    balanced = client.get("/api/balance", params={"level": 0}).json()
    assert by_topic(balanced) == {t: min(int(n), cap) for t, n in enumerate(sizes) if n}


def test_export_download_and_report(client, small_table, points):
    import pyarrow.parquet as pq

    text_len = points["text_len"]
    s = client.post("/api/edits", json={"action": "remove", "predicate": {"select": [{"where": "text_len < 150"}]}})
    assert s.json()["kept"] == (text_len >= 150).sum()
    response = client.get("/api/export.parquet")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == int(response.headers["x-atlas-rows"]) == (text_len >= 150).sum()
    assert table.schema.names == small_table.schema.names
    assert sorted(table["package"].to_pylist()) == sorted(points["id"][text_len >= 150].tolist())
    filtered = client.get("/api/export.parquet", params={"where": "text_len > 400", "with": "tags,dup"})
    table = pq.read_table(io.BytesIO(filtered.content))
    assert table.num_rows == (text_len > 400).sum()
    assert "atlas_tags" in table.schema.names
    everything = client.get("/api/export.parquet", params={"include_removed": "true"})
    assert everything.headers["x-atlas-rows"] == "400"
    report = client.get("/api/report")
    assert report.status_code == 200 and report.text.startswith("<!doctype html")
    assert "data:image/png;base64" in report.text


def test_exit_waits_for_the_embedder_load_under_way(sample_map):
    """The app loads the query embedder in a thread a few seconds after it starts; a process
    that exits while it loads (ONNX Runtime starting its threads) used to abort (rc 134)."""
    code = ("import sys; from pathlib import Path; import atlas.server.app as app; "
            "app.EMBEDDER_DELAY_S = 0; app.create_app(Path(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", code, str(sample_map.path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
