"""ASGI middleware of the app (pure ASGI: no per-request task or body copy).

- :class:`BodyLimit`: 413 for a body over the limit, before reading it when Content-Length
  says so, else as soon as the chunks read pass it;
- :class:`SearchAdmission`: 503 for ``POST /search`` when ``max_queue`` searches are in flight,
  before routing, auth or reading the body;
- :class:`MetricsMiddleware`: request counts and latency per route template;
- :class:`InternalErrors`: 500 ``internal`` (JSON, logged with the traceback) for an exception
  no error handler took, i.e. a bug; the connection stays usable.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from starlette.exceptions import HTTPException as StarletteHTTPException

from .batching import QueueFull
from .errors import error_response
from .metrics import Metrics
from .service import Service

log = logging.getLogger("gingham.server")


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException so FastAPI's body reader re-raises it instead of turning it into a 400.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class BodyLimit:
    """Answers 413 before reading a body whose Content-Length exceeds ``max_bytes``, and stops
    reading a chunked body as soon as it passes the limit."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    response = error_response(413, "payload_too_large",
                                              f"request body exceeds {self.max_bytes} bytes",
                                              headers={"Connection": "close"})
                    return await response(scope, receive, send)
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


class SearchAdmission:
    """Answers 503 (with Retry-After) to ``POST /search`` when ``max_queue`` searches are
    already in flight — before routing, before the body is read or parsed, from a counter — so
    an overloaded server refuses work at the cost of a few attribute reads."""

    _BODY = b'{"error":{"code":"overloaded","message":"server is busy: %d search requests ' \
            b'are in flight (limit %d); retry later"}}'

    def __init__(self, app: Any, service: Service, metrics: Metrics) -> None:
        self.app, self.service, self.metrics = app, service, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] != "/search" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        service = self.service
        try:
            service.admit_search()
        except QueueFull:
            self.metrics.errors.labels("overloaded").inc()
            scope["gingham.endpoint"] = "/search"
            body = self._BODY % (service.searches_in_flight, service.max_queue)
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"retry-after", b"1")]})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            service.release_search()


class MetricsMiddleware:
    """Counts requests and observes latency per route template (not per concrete path)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = [500]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or scope.get("gingham.endpoint") \
                or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, endpoint, str(status[0])).inc()
            self.metrics.latency.labels(method, endpoint).observe(time.perf_counter() - start)


class InternalErrors:
    """Answers 500 ``internal`` for an exception that no handler of ``errors.py`` took. Here,
    inside the app, rather than as Starlette's catch-all handler, which re-raises to the
    server and so closes the client's connection."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def send_started(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_started)
        except Exception as exc:
            log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"),
                      exc_info=(type(exc), exc, exc.__traceback__))
            if started:  # too late for an error answer
                raise
            self.metrics.errors.labels("internal").inc()
            response = error_response(500, "internal", f"internal error ({type(exc).__name__})")
            await response(scope, receive, send)
