"""The server's security model (docs/SECURITY.md) as regressions: each attack of issue 10 fails
with its status and reason and changes nothing; the page, the token and the limits still work."""

import re
import socket
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from atlas.server.app import WEB, create_app
from atlas.server.security import CSP, access_token, host_name, is_loopback, served_hosts
from atlas.tiles import DiskCache

READS = ["/", "/index.html", "/app.js", "/vendor/leaflet/leaflet.js", "/tiles/0/0/0.png", "/api/map",
         "/api/topics", "/api/state", "/api/export.parquet?include_removed=true", "/api/report",
         "/api/records/x", "/api/search?q=data", "/api/filter", "/api/openapi.json"]
FOREIGN = ("host 'evil.example' is not served here; open the map at http://127.0.0.1 "
           "or start `atlas serve` with --allow-host NAME")
NEEDS_TOKEN = ("this server needs its access token: open the URL `atlas serve` printed (it ends in ?token=...), "
               "or send the header `Authorization: token ...`")
CROSS_SITE = "cross-site write refused (origin {!r}); change the map from its own page"
NO_SECRET = ("a write needs the X-Atlas-Token header the page sends: reload the page (the server may have "
             "restarted), or send the access token")


@pytest.fixture(scope="module")
def app(small_map):
    return create_app(small_map.path)


@pytest.fixture(scope="module")
def token_app(small_map):
    return create_app(small_map.path, token="tok-123", hosts=["atlas.lan"])


def client(app, host="127.0.0.1:8000", **kwargs) -> TestClient:
    return TestClient(app, base_url=f"http://{host}", **kwargs)


# ---- the Host allow-list: DNS rebinding reads nothing ----

@pytest.mark.parametrize("path", READS)
def test_a_foreign_host_is_refused_on_every_route(app, path):
    response = client(app, "evil.example:8000").get(path)
    assert response.status_code == 403 and response.json() == {"error": FOREIGN}
    assert response.headers["content-security-policy"] == CSP


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                                  "localhost.evil.example:8000", "[::2]:8000", "0.0.0.0:8000"])
def test_dns_rebinding_cannot_export(app, host):
    response = client(app, host).get("/api/export.parquet", params={"include_removed": "true"})
    assert response.status_code == 403 and b"PAR1" not in response.content
    assert response.json()["error"].startswith("host ")


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST", "localhost."])
def test_loopback_names_are_served(app, host):
    assert client(app, host).get("/api/map").status_code == 200


def test_a_request_without_host_is_refused(app):
    response = client(app).get("/api/map", headers={"host": ""})
    assert response.status_code == 403 and response.json()["error"].startswith("host '(none)' is not served")


# ---- writes: the secret, same origin, JSON only ----

@pytest.fixture
def edited(curated, local_client):
    """A page's client on a fresh map copy holding one removal, and a client with no secret."""
    app = create_app(curated.path)
    page = local_client(app)
    assert page.post("/api/edits", json={"action": "remove", "predicate": {"select": [{"topic": 0}]}}).is_success
    return page, client(app)


def log_of(page) -> tuple:
    state = page.get("/api/state").json()
    return state["edit_seq"], state["kept"], len(state["log"])


@pytest.mark.parametrize("attack, message", [
    ({"data": {"x": "1"}, "headers": {"origin": "http://evil.example"}}, CROSS_SITE.format("http://evil.example")),
    ({"content": b"{}", "headers": {"origin": "null", "content-type": "text/plain"}}, CROSS_SITE.format("null")),
    ({"data": {"x": "1"}},
     "writes send JSON (Content-Type: application/json), not 'application/x-www-form-urlencoded'"),
    ({"files": {"f": b"x"}}, "writes send JSON (Content-Type: application/json), not 'multipart/form-data'"),
    ({"content": b"{}", "headers": {"content-type": "text/plain"}},
     "writes send JSON (Content-Type: application/json), not 'text/plain'"),
    ({"json": {}}, NO_SECRET),
    ({"json": {}, "headers": {"x-atlas-token": "guess"}}, NO_SECRET),
    ({"json": {}, "headers": {"sec-fetch-site": "cross-site"}}, CROSS_SITE.format("unknown")),
])
def test_cross_site_and_secretless_writes_are_refused(edited, attack, message):
    page, stranger = edited
    before = log_of(page)
    response = stranger.post("/api/undo", **attack)
    assert response.status_code == 403 and response.json() == {"error": message}
    assert log_of(page) == before


def test_the_secret_must_come_with_a_same_origin(edited):
    page, _ = edited
    before = log_of(page)
    response = page.post("/api/undo", headers={"origin": "http://evil.example"})
    assert response.status_code == 403 and response.json() == {"error": CROSS_SITE.format("http://evil.example")}
    assert log_of(page) == before
    assert page.post("/api/undo", headers={"origin": "http://127.0.0.1:8000"}).status_code == 200
    assert log_of(page)[1] == 400


def test_the_page_carries_the_secret(app):
    response = client(app).get("/")
    secret = app.state.secret
    assert response.headers["cache-control"] == "no-store"
    assert f'<meta name="atlas-token" content="{secret}">' in response.text and len(secret) >= 32
    assert client(app).get("/index.html").text == response.text
    assert '"X-Atlas-Token": TOKEN' in (WEB / "app.js").read_text()


def test_no_route_changes_state_on_get(edited):
    page, _ = edited
    paths = page.get("/api/openapi.json").json()["paths"]
    writes = {path for path, methods in paths.items() if set(methods) - {"get"}}
    assert all(set(methods) <= {"get", "post"} for methods in paths.values())
    assert writes == {"/api/select", "/api/edits", "/api/undo", "/api/redo", "/api/balance/preview"}
    before = log_of(page)
    for path in writes:
        assert page.get(path).status_code in (404, 405)  # the static mount answers GETs it has no file for
    assert log_of(page) == before


def test_a_body_over_the_cap_is_413(edited):
    page, _ = edited
    response = page.post("/api/select", content=b"[" * (1 << 20) + b"]", headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json() == {"error": "the request body is over 1,048,576 bytes"}


# ---- the access token: every route, reads included ----

@pytest.mark.parametrize("path", READS)
def test_a_token_server_refuses_every_route_without_it(token_app, path):
    for host in ("127.0.0.1:8000", "atlas.lan:8000"):
        response = client(token_app, host).get(path)
        assert response.status_code == 401 and response.json() == {"error": NEEDS_TOKEN}
    wrong = client(token_app).get(path, params={"token": "tok-124"}, headers={"authorization": "token tok-12"})
    assert wrong.status_code == 401


def test_a_token_server_refuses_writes_without_it(token_app):
    response = client(token_app).post("/api/undo", json={}, headers={"x-atlas-token": token_app.state.secret})
    assert response.status_code == 401 and response.json() == {"error": NEEDS_TOKEN}


def test_the_token_in_the_url_becomes_a_cookie(token_app):
    browser = client(token_app, "atlas.lan:8000")
    first = browser.get("/", params={"token": "tok-123"})
    assert first.status_code == 200
    assert first.headers["set-cookie"] == "atlas-token-8000=tok-123; HttpOnly; SameSite=Strict; Path=/"
    assert browser.get("/api/map").status_code == 200  # the cookie alone
    assert browser.get("/tiles/0/0/0.png").status_code == 200
    assert "set-cookie" not in browser.get("/api/map").headers
    other_port = client(token_app, "atlas.lan:8001", cookies={"atlas-token-8000": "tok-123"})
    assert other_port.get("/api/map").status_code == 401


@pytest.mark.parametrize("scheme", ["token", "Bearer"])
def test_the_token_as_a_header_reads_and_writes(token_app, scheme):
    script = client(token_app, headers={"authorization": f"{scheme} tok-123"})
    assert script.get("/api/map").status_code == 200
    assert script.post("/api/select", json={"steps": [{"topic": 0}]}, headers={"x-atlas-token": "tok-123"}).json()[
        "count"] > 0
    assert script.post("/api/select", json={"steps": [{"topic": 0}]}).json() == {"error": NO_SECRET}
    assert client(token_app, "evil.example", headers={"authorization": f"{scheme} tok-123"}).get(
        "/api/map").status_code == 403


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(monkeypatch, small_map, *args):
    """`atlas serve MAP ARGS` up to the point uvicorn would start: (its output, the app)."""
    import uvicorn
    from click.testing import CliRunner

    from atlas.cli import main

    started = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda server, sockets: started.update(app=server.config.app))
    result = CliRunner().invoke(main, ["serve", str(small_map.path), "--port", str(free_port()), *args])
    return result, started.get("app")


def test_binding_beyond_loopback_prints_a_token_and_requires_it(monkeypatch, small_map):
    result, app = serve(monkeypatch, small_map, "--host", "0.0.0.0")
    assert result.exit_code == 0, result.output
    token = re.search(r"\?token=([\w-]+)", result.output).group(1)
    assert len(token) >= 32 and f"http://{socket.gethostname()}:" in result.output
    machine = f"{socket.gethostname()}:8000"
    for path in READS:
        assert client(app, machine).get(path).status_code == 401
    assert client(app, machine).get("/api/map", params={"token": token}).status_code == 200


def test_no_auth_warns_loudly(monkeypatch, small_map):
    result, app = serve(monkeypatch, small_map, "--host", "0.0.0.0", "--no-auth")
    assert "WARNING: --no-auth on 0.0.0.0: anyone who can reach port" in result.output
    assert "?token=" not in result.output
    assert client(app, f"{socket.gethostname()}:8000").get("/api/map").status_code == 200
    assert client(app, "evil.example").get("/api/map").status_code == 403


@pytest.mark.parametrize("args, message", [
    (["--token", "a b"], "error: --token takes letters, digits and . _ ~ - (leave it out to get a generated one)"),
    (["--token", "abc", "--no-auth"], "error: --token and --no-auth contradict each other; pass one"),
])
def test_serve_token_errors(monkeypatch, small_map, args, message):
    result, app = serve(monkeypatch, small_map, *args)
    assert result.exit_code == 1 and message in result.output and app is None


def test_token_and_host_rules():
    assert access_token("127.0.0.1", None, False) is None and access_token("::1", None, False) is None
    assert access_token("127.0.0.1", "mine", False) == "mine"
    assert access_token("192.168.1.5", None, True) is None
    assert access_token("192.168.1.5", None, False) != access_token("192.168.1.5", None, False)
    assert [host_name(h) for h in ("[::1]:80", "Atlas.LAN:8000", "localhost.", "::1", "[::1")] == \
        ["::1", "atlas.lan", "localhost", "::1", "::1"]
    assert [is_loopback(h) for h in ("127.0.0.2", "[::1]", "localhost", "0.0.0.0", "evil")] == \
        [True, True, True, False, False]
    assert served_hosts("127.0.0.1", ["Atlas.lan"]) == ["atlas.lan"]
    assert served_hosts("192.168.1.5") == ["192.168.1.5"]
    assert socket.gethostname().lower() in served_hosts("0.0.0.0")


# ---- headers, and a page that runs under them ----

@pytest.mark.parametrize("path", ["/", "/app.js", "/tiles/0/0/0.png", "/api/map", "/api/records/nope",
                                  "/api/filter?where=(((", "/nowhere"])
def test_security_headers_on_every_response(app, path):
    headers = client(app).get(path).headers
    assert headers["content-security-policy"] == CSP and "frame-ancestors 'none'" in CSP
    assert "script-src 'self';" in CSP and "'unsafe-inline'" not in CSP
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


def test_the_report_gets_a_policy_of_its_own(app):
    response = client(app).get("/api/report")
    policy = response.headers["content-security-policy"]
    assert response.status_code == 200 and policy != CSP and "default-src 'none'; script-src 'sha256-" in policy
    assert policy.endswith("frame-ancestors 'none'") and "'unsafe-inline'; img-src" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]


class _Inline(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        self.found += [f"{tag}[{n}]" for n in names if n == "style" or n.startswith("on")]
        if tag == "style" or (tag == "script" and not names.get("src")):
            self.found.append(tag)


def test_the_page_has_no_inline_script_or_style():
    parser = _Inline()
    parser.feed((WEB / "index.html").read_text())
    assert parser.found == []
    scripts = re.findall(r'<script src="([^"]+)"', (WEB / "index.html").read_text())
    assert scripts == ["vendor/leaflet/leaflet.js", "app.js", "curate.js", "panels.js"]
    assert not [p for p in WEB.glob("*.js") if re.search(r"\beval\(|new Function\(", p.read_text())]


# ---- bounded work ----

def test_export_and_report_run_one_at_a_time(app):
    with app.state.heavy("an export"):
        for path in ("/api/export.parquet", "/api/report"):
            response = client(app).get(path)
            assert response.status_code == 429
            assert response.json() == {"error": "an export is running; try again when it finishes"}
    assert client(app).get("/api/export.parquet").status_code == 200


def test_disk_cache_is_an_lru_with_a_cap(tmp_path):
    cache = DiskCache(tmp_path, "v1", max_bytes=250)
    for y in range(3):
        cache.put(0, 0, y, bytes([y]) * 100)
    assert cache.get(0, 0, 0) is None and cache.get(0, 0, 2) == b"\x02" * 100 and cache.size == 200
    cache.get(0, 0, 1)  # now the most recent
    cache.put(1, 0, 0, b"n" * 100)
    assert cache.get(0, 0, 2) is None and cache.get(0, 0, 1) is not None
    assert sorted(p.name for p in (tmp_path / "v1").rglob("*.png")) == ["0.png", "1.png"]
    (tmp_path / "v1" / "0" / "0" / "x.tmp").write_bytes(b"half")
    again = DiskCache(tmp_path, "v1", max_bytes=250)
    assert again.size == 200 and not list(tmp_path.rglob("*.tmp"))
    DiskCache(tmp_path, "v2")
    assert [p.name for p in tmp_path.iterdir()] == []  # other versions' tiles are gone


def test_blank_tiles_stay_off_disk(curated, local_client):
    page = local_client(create_app(curated.path))
    renderer = page.app.state.tiles
    empty = next((x, y) for x in range(8) for y in range(8) if renderer.rows(3, x, y)[0] == renderer.rows(3, x, y)[1])
    assert page.get(f"/tiles/3/{empty[0]}/{empty[1]}.png").status_code == 200
    assert page.get("/tiles/0/0/0.png").status_code == 200
    version = page.app.state.map_build_id
    assert [p.relative_to(curated.tiles_path).as_posix() for p in curated.tiles_path.rglob("*.png")] == \
        [f"{version}/0/0/0.png"]


def test_exports_and_reports_are_private(curated, tmp_path):
    from atlas.curation_report import report
    from atlas.export import export

    out = tmp_path / "out"
    out.mkdir()
    export(curated.path, out / "clean.parquet")
    report(curated.path, out / "report.html")
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {"clean.parquet": 0o600, "report.html": 0o600}


def test_a_record_id_with_a_slash_opens(curated, local_client):
    import pyarrow as pa
    import pyarrow.parquet as pq

    points = pq.read_table(curated.points_path)
    ids = points.column("id").to_pylist()
    original, ids[0] = ids[0], "team/pkg?x #1"
    pq.write_table(points.set_column(points.schema.get_field_index("id"), "id", pa.array(ids)), curated.points_path)
    page = local_client(create_app(curated.path))
    record = page.get("/api/records/team%2Fpkg%3Fx%20%231")
    assert record.status_code == 200 and record.json()["id"] == "team/pkg?x #1"
    assert page.get("/api/records/team/pkg%3Fx%20%231").json()["id"] == "team/pkg?x #1"
    missing = page.get("/api/records/a/b")
    assert missing.status_code == 404 and missing.json() == {"error": "no record with id 'a/b'"}
    assert page.get(f"/api/records/{original}").status_code == 404
