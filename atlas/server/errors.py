"""Errors that carry their HTTP status, and the handlers that render every error as JSON:
ApiError and HTTP errors (404, 405...) with their status, AtlasError (a user's bad input) as
400, a malformed request as 422, anything unexpected as 500 without its traceback (that goes
to the log)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from atlas.errors import AtlasError, MapChanged


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def add_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(AtlasError)
    async def atlas_error(request: Request, error: AtlasError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=409 if isinstance(error, MapChanged) else 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "; ".join(map(_problem, error.errors()))}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logging.getLogger("atlas.server").exception("unexpected error on %s", request.url.path)
        return JSONResponse({"error": f"internal error ({type(error).__name__}); the server log has the details"},
                            status_code=500)


def _problem(error: dict) -> str:
    """One validation error as `field: what is wrong`."""
    if error["type"] == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'unreadable')})"
    return f"{'.'.join(map(str, error['loc'][1:])) or error['loc'][0]}: {error['msg']}"
