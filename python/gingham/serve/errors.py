"""Exceptions -> JSON error answers ``{"error": {"code", "message"[, "details"]}}``.

Only exceptions that gingham raises on purpose get a 4xx/503/504 answer: request schema
errors (pydantic), :class:`~gingham.serve.limits.InvalidArgument` / ``LimitError`` (the
service's checks, and engine input errors it converted where it called the engine with user
input), ``UnknownIdError`` (an id not in the index), the bounded queues' ``QueueFull`` and
:class:`ApiError` (auth, timeouts). Anything else (a ValueError or TypeError included) is a bug:
``middleware.InternalErrors`` logs it with its traceback and answers 500 ``internal``.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..storage import UnknownIdError
from . import models as m
from .batching import QueueFull
from .limits import InvalidArgument, LimitError
from .metrics import Metrics

#: Stable error codes of HTTP errors raised by routing itself (unknown route, wrong method...).
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media",
              422: "invalid_request", 503: "overloaded", 504: "timeout"}

#: ``responses=`` of every route: the error answers documented in the OpenAPI schema.
ERROR_RESPONSES: dict = {code: {"model": m.ErrorResponse}
                         for code in (401, 404, 413, 422, 500, 503, 504)}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   details: list | None = None) -> JSONResponse:
    """The JSON error answer every failure gets."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    """Register the exception -> answer mapping (module docstring); every answer is counted
    in ``gingham_errors_total{code}``."""

    def counted(status: int, code: str, message: str, **kw: Any) -> JSONResponse:
        metrics.errors.labels(code).inc()
        return error_response(status, code, message, **kw)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return counted(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                    "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        return counted(422, "invalid_request", f"{where}: {first['msg']}", details=details)

    @app.exception_handler(ValidationError)
    async def invalid_body(request: Request, exc: ValidationError) -> JSONResponse:
        # a body the route parsed itself (POST /search)
        return await invalid_request(request, RequestValidationError(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return counted(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(LimitError)
    async def limit_error(request: Request, exc: LimitError) -> JSONResponse:
        return counted(422, "limit_exceeded", str(exc))

    @app.exception_handler(InvalidArgument)
    async def invalid_argument(request: Request, exc: InvalidArgument) -> JSONResponse:
        return counted(422, "invalid_argument", str(exc))

    @app.exception_handler(UnknownIdError)
    async def not_found(request: Request, exc: UnknownIdError) -> JSONResponse:
        return counted(404, "not_found", str(exc))

    @app.exception_handler(QueueFull)
    async def overloaded(request: Request, exc: QueueFull) -> JSONResponse:
        return counted(503, "overloaded", f"server is busy: {exc}; retry later",
                       headers={"Retry-After": "1"})
