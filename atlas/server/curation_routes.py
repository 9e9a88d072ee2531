"""Curation read routes: edit state, selections, filter histograms, duplicates, balance,
export and the report. Nothing here writes the edit log (see write_routes)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from atlas.curation import Groups, Removal, parse_extras
from atlas.server.curation_views import Views
from atlas.server.errors import not_found

router = APIRouter()


class Selection(BaseModel):
    steps: list[dict]
    where: str | None = None


class QuotaPreview(BaseModel):
    level: int = 0
    seed: int = 0
    cap: int | None = None
    cap_pct: float | None = None
    target: int | None = None


def views(request: Request) -> Views:
    return request.app.state.views


@router.get("/api/state")
def state(request: Request) -> dict:
    return views(request).state()


@router.post("/api/select")
def select(request: Request, body: Selection) -> dict:
    v = views(request)
    return v.selection(v.curation.select(body.steps, body.where))


@router.get("/api/filter")
def filter_view(request: Request, where: str | None = None, level: int = 0, column: str | None = None) -> dict:
    v = views(request)
    return v.filtered(where or None, v.curation.level(level), column or None)


def found_duplicates(request: Request, near_threshold: float | None = None,
                     semantic_threshold: float | None = None, keep: str = "longest",
                     prefer: Annotated[list[str] | None, Query()] = None,
                     kinds: Annotated[list[str] | None, Query()] = None) -> tuple[Groups, Removal]:
    """Groups of `kinds` (repeated or comma-separated; default all but template) at the
    thresholds, and who replaces whom under the rule `keep` and the per-group choices `prefer`."""
    return views(request).curation.duplicate_removal(keep, near_threshold, semantic_threshold, prefer or [], kinds)


Duplicates = Annotated[tuple[Groups, Removal], Depends(found_duplicates)]


@router.get("/api/duplicates")
def duplicates(request: Request, found: Duplicates, offset: int = Query(0, ge=0),
               limit: int = Query(50, ge=1, le=500)) -> dict:
    return views(request).duplicates(*found, offset, limit)


@router.get("/api/duplicates/{group}")
def duplicate_group(request: Request, group: int, found: Duplicates) -> dict:
    groups, removal = found
    if not 0 <= group < groups.count:
        raise not_found(f"no duplicate group {group}; there are {groups.count} at these thresholds")
    return {"group": group, "members": views(request).group(groups, removal, group)}


@router.get("/api/balance")
def balance(request: Request, level: int = 0) -> dict:
    v = views(request)
    return v.balance(v.curation.level(level))


@router.post("/api/balance/preview")
def balance_preview(request: Request, body: QuotaPreview) -> dict:
    curation = views(request).curation
    quota = curation.quota(**body.model_dump())
    return {"level": quota.level, "before": int(quota.before.sum()), "after": int(quota.after.sum()),
            "remove": int(quota.remove.sum()), "topics": quota.preview(curation.labels())}


@router.get("/api/export.parquet")
def export_parquet(request: Request, where: str | None = None, extras: str = Query("", alias="with"),
                   include_removed: bool = False) -> FileResponse:
    """The kept records as parquet (one export or report at a time: 429 while one runs)."""
    chosen = parse_extras(extras)
    handle, name = tempfile.mkstemp(suffix=".parquet", prefix="atlas-export-")
    os.close(handle)
    path = Path(name)
    try:
        with request.app.state.heavy("an export"):
            rows = views(request).curation.export(path, extras=chosen, include_removed=include_removed,
                                                  where=where or None)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    filename = f"{request.app.state.data.mapdir.path.name}-clean.parquet"
    return FileResponse(path, media_type="application/vnd.apache.parquet", filename=filename,
                        headers={"X-Atlas-Rows": str(rows)},
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.get("/api/report", response_class=HTMLResponse)
def report(request: Request) -> HTMLResponse:
    """The curation report (one export or report at a time: 429 while one runs)."""
    with request.app.state.heavy("a report"):
        page = views(request).curation.report_html()
    return HTMLResponse(page, headers={"Content-Security-Policy": report_policy(page)})


def report_policy(page: str) -> str:
    """The report's own Content-Security-Policy: its inline scripts (BokehJS and the charts)
    run by hash, nothing is fetched; Bokeh styles its plots inline and the maps are data URIs."""
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in scripts)
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

