"""The ASGI app: read, curation and write routes, tiles, the static page, and the JSON error
handlers, all behind the security guard (atlas.server.security)."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Iterable
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from atlas.curation import Curation
from atlas.mapdir import MapDir
from atlas.palette import topic_colors
from atlas.query import MapData
from atlas.server.curation_routes import router as curation_router
from atlas.server.curation_views import Views
from atlas.server.errors import add_handlers
from atlas.server.read_routes import router as read_router
from atlas.server.security import Guard, OneAtATime, Policy, with_secret
from atlas.server.write_routes import router as write_router
from atlas.tiles import DISK_BYTES, DiskCache, TileRenderer

WEB = Path(__file__).resolve().parent.parent.parent / "web"
EMBEDDER_DELAY_S = 4.0
_LOADERS: weakref.WeakSet[threading.Timer] = weakref.WeakSet()  # embedder loads not yet finished


@atexit.register
def _wait_for_loaders() -> None:
    """Cancel the embedder loads not started and wait for those under way: a load that
    interpreter exit cuts off aborts the process (its runtime's threads are killed)."""
    for loader in list(_LOADERS):
        loader.cancel()
        loader.join()


def create_app(map_dir: Path, *, token: str | None = None, hosts: Iterable[str] = (),
               frame_ancestors: tuple[str, ...] = (), tile_cache_bytes: int = DISK_BYTES) -> FastAPI:
    """The app for one map. `token`: every request must carry it (None: none needed, for a
    loopback bind only); `hosts`: Host names served besides loopback's ("*": any);
    `frame_ancestors`: the pages that may show it in a frame (none by default). Writes need
    `app.state.secret` (the page gets it in index.html) or the token in X-Atlas-Token."""
    data = MapData(MapDir(map_dir))
    build = data.build_id  # tile URLs and the tile cache carry it
    colors = topic_colors(data.topics)
    coarse = data.levels[0]
    renderer = TileRenderer(data.x, data.y, coarse - coarse.min(), data.morton,
                            tuple(data.manifest["world"]), colors["coarse"],
                            disk=DiskCache(data.mapdir.tiles_path, build, tile_cache_bytes))
    if data.manifest["embedder"].get("spec") is not None:
        # Load the query embedder before the first semantic search needs it, but a few
        # seconds after start: on 2 cores, loading it at once slowed the first page load 2x.
        loader = threading.Timer(EMBEDDER_DELAY_S, lambda: data.embedder)
        loader.daemon = True
        loader.start()
        _LOADERS.add(loader)
    policy = Policy.create(hosts=hosts, token=token, frame_ancestors=frame_ancestors)
    app = FastAPI(title="Atlas", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    curation = Curation.of(data)
    app.state.data, app.state.tiles, app.state.colors = data, renderer, colors
    app.state.map_build_id = build
    app.state.views = Views(curation, data)
    app.state.secret, app.state.heavy = policy.secret, OneAtATime()

    add_handlers(app)
    page = with_secret((WEB / "index.html").read_text(encoding="utf-8"), policy.secret)

    @app.get("/", include_in_schema=False)
    @app.get("/index.html", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    app.include_router(read_router)
    app.include_router(curation_router)
    app.include_router(write_router)
    app.mount("/", StaticFiles(directory=WEB, html=True), name="web")
    app.add_middleware(Guard, policy=policy)
    return app
