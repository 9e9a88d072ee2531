"""The HTTP API, in process, on a small real map."""

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from atlas.server.app import create_app


@pytest.fixture(scope="module")
def client(small_map):
    return TestClient(create_app(small_map.path))


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
