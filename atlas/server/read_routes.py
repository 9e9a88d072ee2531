"""Read-only routes: map metadata, topics, tiles, viewport points, records, search."""

from __future__ import annotations

import math
from typing import Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from atlas.schema import SIZE, TOPIC_ID
from atlas.server.errors import bad_request, not_found
from atlas.tiles import MAX_ZOOM

router = APIRouter()


@router.get("/api/map")
def map_info(request: Request) -> dict:
    data = request.app.state.data
    m = data.manifest
    return {
        "name": data.mapdir.path.name, "records": m["records"], "levels": m["levels"],
        "topics_per_level": m["topics_per_level"], "extent": m["extent"], "world": m["world"],
        "max_zoom": MAX_ZOOM, "embedder": m["embedder"]["name"], "duplicates": m["duplicates"],
        "source": m["source"]["path"], "text_columns": m["columns"]["text"],
        "build_id": request.app.state.map_build_id,
        "semantic_search": m["embedder"].get("spec") is not None,
    }


@router.get("/api/topics")
def topics(request: Request) -> list[dict]:
    data = request.app.state.data
    data.refresh_labels()
    colors = request.app.state.colors["topic"]
    return [{**t, "share": t[SIZE] / len(data), "color": colors[t[TOPIC_ID]]} for t in data.topics]


@router.get("/api/labels-status")
def labels_status(request: Request) -> dict:
    """Where LLM naming stands ({state, done, total, model, version}); the page polls it while
    topics are being named and fetches /api/topics again when `version` changes."""
    return request.app.state.data.refresh_labels()


@router.get("/tiles/{z}/{x}/{y}.png")
async def tile(request: Request, z: int, x: int, y: int, where: str | None = None) -> Response:
    """One tile; removed points, and those outside the filter `where`, are drawn dimmed. The
    page adds `v=` (the map's build id and the edit seq) so a browser asks again after each edit."""
    if not (0 <= z <= MAX_ZOOM and 0 <= x < 1 << z and 0 <= y < 1 << z):
        raise not_found(f"no tile {z}/{x}/{y}: zoom runs 0..{MAX_ZOOM} and x, y 0..2**zoom-1")
    edits_key, active = await run_in_threadpool(request.app.state.views.active, where or None)
    build = request.app.state.map_build_id
    cache_key = build if active is None else f"{build}-{edits_key}"
    etag = f'"{cache_key}-{z}-{x}-{y}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    png = await run_in_threadpool(request.app.state.tiles.tile, z, x, y, cache_key, active)
    return Response(png, media_type="image/png", headers=headers)


@router.get("/api/points")
def points(
    request: Request,
    x0: float = Query(), y0: float = Query(), x1: float = Query(), y1: float = Query(),
    limit: int = Query(2000, ge=1, le=20000),
    sample: bool = Query(True, description="more than `limit` points: return an even sample (else none)"),
) -> dict:
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 < x0 or y1 < y0:
        raise bad_request("the box needs finite x0 <= x1 and y0 <= y1")
    total, found = request.app.state.data.in_box(x0, y0, x1, y1, limit, sample)
    return {"total": total, "points": found}


@router.get("/api/records/{record_id:path}")
def record(request: Request, record_id: str, k: int = Query(10, ge=1, le=50)) -> dict:
    try:
        return request.app.state.data.record(record_id, k)
    except LookupError:
        raise not_found(f"no record with id {record_id!r}") from None


@router.get("/api/search")
async def search(
    request: Request,
    q: str = Query(min_length=1, max_length=500),
    mode: Literal["keyword", "semantic"] = "keyword",
    limit: int = Query(50, ge=1, le=500),
) -> dict:
    data = request.app.state.data
    if not q.strip():
        raise bad_request("the query is empty")
    if mode == "semantic" and data.manifest["embedder"].get("spec") is None:
        raise bad_request("this map was built from precomputed vectors: semantic search is off")
    results = await run_in_threadpool(data.search, q, mode, limit)
    return {"query": q, "mode": mode, "results": results}
