"""Write routes: every change to the edit log (edit, undo, redo). Each returns the new state.

The log is SQLite in WAL mode with one immediate transaction per entry, so two tabs editing
at once both land; the state each route returns is derived from the log, never from a copy
held by the server."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from atlas.server.curation_views import Views

router = APIRouter()


class Edit(BaseModel):
    action: Literal["tag", "untag", "remove", "restore"]
    predicate: dict
    tag: str | None = Field(None, max_length=200)
    reason: str = Field("", max_length=2000)


def _views(request: Request) -> Views:
    return request.app.state.views


@router.post("/api/edits")
async def edit(request: Request, body: Edit) -> dict:
    views = _views(request)
    entry = await run_in_threadpool(views.curation.edit, body.action, body.predicate,
                                    tag=body.tag or None, reason=body.reason)
    return {"edit": {"seq": entry.seq, "action": entry.action, "count": entry.count}, **views.state()}


@router.post("/api/undo")
def undo(request: Request) -> dict:
    return _step(request, "undo")


@router.post("/api/redo")
def redo(request: Request) -> dict:
    return _step(request, "redo")


def _step(request: Request, action: str) -> dict:
    views = _views(request)
    entry = views.curation.undo() if action == "undo" else views.curation.redo()  # none: AtlasError, a 400
    return {"edit": {"seq": entry.seq, "action": entry.action, "target": entry.target, "count": entry.count},
            **views.state()}
