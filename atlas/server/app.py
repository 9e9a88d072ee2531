"""The ASGI app: read, curation and write routes, tiles, the static page, and the JSON error handlers."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from atlas.curation import SEMANTIC_MATCHES, Curation
from atlas.errors import AtlasError, MapChanged
from atlas.mapdir import MapDir
from atlas.palette import topic_colors
from atlas.query import MapData
from atlas.server.curation_routes import router as curation_router
from atlas.server.curation_views import Views
from atlas.server.errors import ApiError
from atlas.server.read_routes import router as read_router
from atlas.server.write_routes import router as write_router
from atlas.tiles import TileRenderer

WEB = Path(__file__).resolve().parent.parent.parent / "web"
EMBEDDER_DELAY_S = 4.0


def create_app(map_dir: Path) -> FastAPI:
    data = MapData(MapDir(map_dir))
    colors = topic_colors(data.topics)
    coarse = data.levels[0]
    renderer = TileRenderer(data.x, data.y, coarse - coarse.min(), data.morton,
                            tuple(data.manifest["world"]), colors["coarse"],
                            cache_dir=data.mapdir.tiles_path)
    if data.manifest["embedder"].get("spec") is not None:
        # Load the query embedder before the first semantic search needs it, but a few
        # seconds after start: on 2 cores, loading it at once slowed the first page load 2x.
        loader = threading.Timer(EMBEDDER_DELAY_S, lambda: data.embedder)
        loader.daemon = True
        loader.start()
    app = FastAPI(title="Atlas", docs_url="/api/docs", openapi_url="/api/openapi.json")
    curation = Curation(data.mapdir, search=data.keyword_positions,
                        semantic=lambda query: data.semantic_positions(query, SEMANTIC_MATCHES)[0],
                        points=data.points, records=data.records)
    app.state.data, app.state.tiles, app.state.colors = data, renderer, colors
    app.state.map_build_id = data.mapdir.build_id()  # tile URLs and the tile cache carry it
    app.state.views = Views(curation, data)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(AtlasError)
    async def atlas_error(request: Request, error: AtlasError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=409 if isinstance(error, MapChanged) else 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors())
        return JSONResponse({"error": problems}, status_code=422)

    app.include_router(read_router)
    app.include_router(curation_router)
    app.include_router(write_router)
    app.mount("/", StaticFiles(directory=WEB, html=True), name="web")
    return app
