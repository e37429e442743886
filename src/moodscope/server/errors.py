"""Every error the API returns is JSON ``{"error": short text, "detail": what to do or which field}``.

Statuses: 400 bad parameters (a mood word that does not exist, a folder that is not one), 403 a
folder outside the configured roots or scanning disabled, 404 unknown id or route, 405 wrong
method, 413 upload too large, 415 not decodable audio (or not a multipart upload), 422 a request
that does not match the schema (or audio too short to analyse), 503 analysis queue full (with
``Retry-After``). Library and analysis errors (:class:`~moodscope.errors.MoodscopeError`) raised
by a handler become 400 with their message; anything else is a 500 that is logged — a bug, never
the client's input.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from moodscope.errors import MoodscopeError

log = logging.getLogger(__name__)

REASONS = {
    400: "bad request",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "upload too large",
    415: "unsupported media type",
    416: "range not satisfiable",
    422: "invalid request",
    500: "internal server error",
    503: "busy",
}


class ApiError(Exception):
    """An error response: status, short ``error`` text, ``detail`` (what to do), extra headers."""

    def __init__(self, status: int, detail, *, error: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.error = error or REASONS.get(status, "error")
        self.detail = detail
        self.headers = headers or {}


def error_response(status: int, detail, *, error: str | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": error or REASONS.get(status, "error"), "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> list[dict]:
    """Pydantic's errors without the echoed input (it may be a whole upload) and with plain values."""
    out = []
    for err in exc.errors():
        out.append({"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", "")),
                    "type": str(err.get("type", ""))})  # fmt: skip
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.detail, error=exc.error, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if exc.status_code != 404 else f"no such page or endpoint: {request.url.path}"
        return error_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(MoodscopeError)
    async def moodscope_error(request: Request, exc: MoodscopeError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, f"{type(exc).__name__}: the server failed on this request (see its log)")
