"""The FastAPI application behind ``gingham.server.create_app`` (routes, errors, auth, metrics).

Kept apart from ``server.py`` so that ``gingham --help`` and the CLI's argument parsing do not
import FastAPI.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any, Awaitable, Callable, Optional

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import models as m
from .batching import QueueFull
from .service import LimitError, SearchKey, Service, ServiceLimits

log = logging.getLogger("gingham.server")

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media",
                 422: "invalid_request", 503: "overloaded", 504: "timeout"}
_ERRORS = {code: {"model": m.ErrorResponse} for code in (401, 404, 413, 422, 503, 504)}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException so FastAPI's body reader re-raises it instead of turning it into a 400.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
           details: list | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


# ---- middleware (pure ASGI: no per-request task or body copy) ----------------------------------

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
                    response = _error(413, "payload_too_large",
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


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can share a process)."""

    def __init__(self, service: Service) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        self.registry = CollectorRegistry()
        self.requests = Counter("gingham_http_requests", "HTTP requests answered",
                                ["method", "endpoint", "status"], registry=self.registry)
        self.latency = Histogram("gingham_http_request_duration_seconds",
                                 "Time from request to response", ["method", "endpoint"],
                                 registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5,
                                          5, 10, 30))
        self.errors = Counter("gingham_errors", "Error responses by code", ["code"],
                              registry=self.registry)
        self.batch = Histogram("gingham_search_batch_queries", "Queries per batched search call",
                               registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        Gauge("gingham_search_queue_depth", "Search requests waiting or running",
              registry=self.registry).set_function(lambda: service.batcher.n_waiting)
        Gauge("gingham_search_requests_in_flight", "Search requests admitted and not yet "
              "answered (bounded by --max-queue)",
              registry=self.registry).set_function(lambda: service.searches_in_flight)
        Gauge("gingham_write_queue_depth", "Writes waiting or running",
              registry=self.registry).set_function(lambda: service.writes_waiting)
        Gauge("gingham_index_documents", "Live documents in the index",
              registry=self.registry).set_function(service.n_docs)
        service.on_batch = self.batch.observe

    def render(self) -> bytes:
        from prometheus_client import generate_latest
        return generate_latest(self.registry)


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


def _version() -> str:
    from .. import __version__
    return __version__


def _auth_dependencies(api_key: str | None, scope: str):
    bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
    expected = api_key.encode() if api_key else None

    async def check(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)  # noqa: B008
                    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise ApiError(401, "unauthorized", "a valid API key is required as "
                                                "'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})

    async def open_access() -> None:
        return None

    if expected is None:
        return open_access, open_access
    return (check if scope == "all" else open_access), check


def _install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    def counted(status: int, code: str, message: str, **kw: Any) -> JSONResponse:
        metrics.errors.labels(code).inc()
        return _error(status, code, message, **kw)

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
        return await invalid_request(request, RequestValidationError(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return counted(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(LimitError)
    async def limit_error(request: Request, exc: LimitError) -> JSONResponse:
        return counted(422, "limit_exceeded", str(exc))

    async def invalid_argument(request: Request, exc: Exception) -> JSONResponse:
        return counted(422, "invalid_argument", str(exc))

    for exc_type in (ValueError, TypeError):  # gingham's validation errors
        app.add_exception_handler(exc_type, invalid_argument)

    @app.exception_handler(FileNotFoundError)
    async def index_missing(request: Request, exc: FileNotFoundError) -> JSONResponse:
        return counted(404, "index_not_found", str(exc))

    @app.exception_handler(QueueFull)
    async def overloaded(request: Request, exc: QueueFull) -> JSONResponse:
        return counted(503, "overloaded", f"server is busy: {exc}; retry later",
                       headers={"Retry-After": "1"})

    @app.exception_handler(TimeoutError)
    async def timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return counted(504, "timeout", str(exc) or "the request timed out")

    @app.exception_handler(NotImplementedError)
    async def not_supported(request: Request, exc: NotImplementedError) -> JSONResponse:
        return counted(501, "not_supported", str(exc))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return counted(500, "internal", f"internal error ({type(exc).__name__})")


async def _with_timeout(awaitable: Awaitable[Any], seconds: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise TimeoutError(f"{what} did not finish within {seconds:g} s") from None


def _not_found(exc: KeyError) -> ApiError:
    what = exc.args[0] if exc.args else "unknown id"
    return ApiError(404, "not_found", what if isinstance(what, str) and " " in what
                    else f"unknown document id {what!r}")


def _json_body(model: type, components: dict) -> dict:
    """openapi_extra documenting ``model`` as the JSON body of a route that parses its body
    itself; nested models go to ``components`` (merged into the schema by build_app)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


def _with_components(app: FastAPI, components: dict) -> Callable[[], dict]:
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in components.items():
                schemas.setdefault(name, definition)
        return app.openapi_schema
    return openapi


def _add_routes(app: FastAPI, service: Service, metrics: Metrics, read_auth: Callable,
                write_auth: Callable, timeout_s: float, write_timeout_s: float) -> dict:
    """Adds the routes; returns schemas that the OpenAPI components must also hold."""
    limits = service.limits
    components: dict = {}
    read = [Depends(read_auth)]
    write = [Depends(write_auth)]

    @app.post("/search", response_model=m.SearchResponse, dependencies=read, responses=_ERRORS,
              summary="Top-k documents for one or many queries (text or embeddings)",
              openapi_extra=_json_body(m.SearchRequest, components))
    async def search(request: Request) -> JSONResponse:
        # A full queue has answered 503 already (SearchAdmission). The body is parsed here,
        # not by FastAPI: pydantic's JSON mode parses embeddings ~6x faster than json.loads +
        # validate.
        start = time.perf_counter()
        body = m.SearchRequest.model_validate_json(await request.body())
        given = [n for n in ("query", "queries", "embedding", "embeddings")
                 if getattr(body, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of query, queries, embedding, embeddings; got "
                             f"{', '.join(given) or 'none'}")
        service.check_k(body.k)
        service.check_filters(body.subset, body.where, body.params)
        if body.query is not None or body.queries is not None:
            texts = [body.query] if body.query is not None else body.queries
            service.check_count(len(texts), limits.max_queries, "queries")
            items: list[Any] = [service.check_text(t, f"queries[{i}]")
                                for i, t in enumerate(texts)]
            if not service.has_encoder:
                raise ValueError("this index was built from embeddings and has no encoder; "
                                 "send query embeddings instead of text")
            kind = "text"
        else:
            mats = [body.embedding] if body.embedding is not None else body.embeddings
            service.check_count(len(mats), limits.max_queries, "embeddings")
            names = ["embedding"] if body.embedding is not None else \
                [f"embeddings[{i}]" for i in range(len(mats))]
            items = [service.check_query_embedding(m.as_array(q, name), name)
                     for q, name in zip(mats, names)]
            if body.hybrid:
                raise ValueError("hybrid search needs text queries")
            kind = "embedding"
        key = SearchKey(kind=kind, k=body.k, mode=body.mode, hybrid=body.hybrid,
                        subset=tuple(body.subset) if body.subset is not None else None,
                        where=body.where,
                        params=tuple(body.params) if body.params is not None else None,
                        with_documents=body.with_documents)
        results = await _with_timeout(service.search(key, items), timeout_s, "search")
        return JSONResponse({"results": results,
                             "took_ms": 1000.0 * (time.perf_counter() - start)})

    @app.post("/rerank", response_model=m.RerankResponse, dependencies=read, responses=_ERRORS,
              summary="Exact MaxSim of one query against the given documents, best first")
    async def rerank(body: m.RerankRequest) -> dict:
        start = time.perf_counter()
        if (body.query is None) == (body.embedding is None):
            raise ValueError("give exactly one of query (text) and embedding")
        service.check_count(len(body.ids), limits.max_documents, "ids")
        if body.k is not None:
            service.check_k(body.k)
        if body.query is not None:
            text = service.check_text(body.query, "query")
            query = await _with_timeout(asyncio.to_thread(service.encode_query, text),
                                        timeout_s, "query encoding")
        else:
            query = service.check_query_embedding(m.as_array(body.embedding, "embedding"),
                                                  "embedding")
        try:
            hits = await _with_timeout(asyncio.to_thread(service.rerank, query, body.ids, body.k),
                                       timeout_s, "rerank")
        except KeyError as exc:
            raise _not_found(exc) from None
        return {"results": hits, "took_ms": 1000.0 * (time.perf_counter() - start)}

    @app.post("/documents", response_model=m.AddResponse, dependencies=write, responses=_ERRORS,
              summary="Add documents (texts for a text index, embeddings otherwise)")
    async def add_documents(body: m.AddRequest) -> dict:
        docs = body.documents
        service.check_count(len(docs), limits.max_documents, "documents")
        ids = [d.id for d in docs]
        metadata = [d.metadata for d in docs] if any(d.metadata is not None for d in docs) \
            else None
        if service.has_encoder:
            bad = [i for i, d in enumerate(docs) if d.text is None or d.embedding is not None]
            if bad:
                raise ValueError(f"documents[{bad[0]}]: this index encodes text itself; send "
                                 "'text' and no 'embedding'")
            texts = [service.check_text(d.text, f"documents[{i}].text")
                     for i, d in enumerate(docs)]
            call = (service.add_texts, ids, texts, metadata, body.upsert)
        else:
            bad = [i for i, d in enumerate(docs) if d.embedding is None]
            if bad:
                raise ValueError(f"documents[{bad[0]}]: this index has no encoder; send "
                                 "'embedding' (n_tokens x dim floats)")
            for i, d in enumerate(docs):
                if d.text is not None:
                    service.check_text(d.text, f"documents[{i}].text")
            embeddings = [service.check_doc_embedding(
                m.as_array(d.embedding, f"documents[{i}].embedding"), f"documents[{i}].embedding")
                for i, d in enumerate(docs)]
            call = (service.add_embeddings, ids, embeddings, metadata,
                    [d.text for d in docs], body.upsert)
        await _with_timeout(service.write(*call), write_timeout_s, "add")
        return {"added": len(ids), "ids": ids, "n_docs": service.n_docs()}

    async def _delete(ids: list[str], missing: str) -> dict:
        service.check_count(len(ids), limits.max_documents, "ids")
        try:
            n = await _with_timeout(service.write(service.delete, ids, missing),
                                    write_timeout_s, "delete")
        except KeyError as exc:
            raise _not_found(exc) from None
        return {"deleted": n, "n_docs": service.n_docs()}

    @app.delete("/documents", response_model=m.DeleteResponse, dependencies=write,
                responses=_ERRORS, summary="Delete documents by id")
    async def delete_documents(body: m.DeleteRequest) -> dict:
        return await _delete(body.ids, body.missing)

    @app.delete("/documents/{doc_id:path}", response_model=m.DeleteResponse, dependencies=write,
                responses=_ERRORS, summary="Delete one document")
    async def delete_document(doc_id: str) -> dict:
        return await _delete([doc_id], "raise")

    @app.get("/documents/{doc_id:path}", response_model=m.Document, dependencies=read,
             responses=_ERRORS, summary="A document's text and metadata")
    async def get_document(doc_id: str) -> dict:
        try:
            return await asyncio.to_thread(service.get, doc_id)
        except KeyError as exc:
            raise _not_found(exc) from None

    @app.get("/health", response_model=m.Health, summary="Liveness (never needs a key)")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/stats", dependencies=read, responses=_ERRORS,
             summary="Index statistics and server counters")
    async def stats() -> dict:
        index_stats = await asyncio.to_thread(service.stats)
        b = service.batcher
        return {"index": index_stats, "path": service.path,
                "server": {"uptime_s": time.time() - service.started_at,
                           "search_queue_depth": b.n_waiting,
                           "searches_in_flight": service.searches_in_flight,
                           "write_queue_depth": service.writes_waiting,
                           "batches_run": b.batches_run, "requests_batched": b.items_run,
                           "batch_window_ms": 1000.0 * b.window_s, "max_batch": b.max_batch,
                           "max_queue": b.max_pending, "limits": vars(limits).copy()}}

    @app.get("/metrics", dependencies=read, response_class=PlainTextResponse,
             summary="Prometheus metrics (text exposition format)")
    async def prometheus() -> PlainTextResponse:
        from prometheus_client import CONTENT_TYPE_LATEST
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return components


# ---- the app -----------------------------------------------------------------------------------

def build_app(index_path: str | os.PathLike, *, api_key: str | None, auth: str,
              batch_window_ms: float, max_batch: int, max_queue: int, max_pending_writes: int,
              max_body_bytes: int, request_timeout_s: float, write_timeout_s: float,
              limits: ServiceLimits | None) -> FastAPI:
    """See :func:`gingham.server.create_app`."""
    service = Service(index_path, batch_window_ms=batch_window_ms, max_batch=max_batch,
                      max_queue=max_queue, max_pending_writes=max_pending_writes, limits=limits)
    metrics = Metrics(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="gingham", version=_version(), lifespan=lifespan,
                  description="Late-interaction (ColBERT-style) retrieval over one index. "
                              "Scores are raw MaxSim sums.")
    app.state.service = service
    app.state.metrics = metrics
    _install_error_handlers(app, metrics)
    read_auth, write_auth = _auth_dependencies(api_key, auth)
    components = _add_routes(app, service, metrics, read_auth, write_auth, request_timeout_s,
                             write_timeout_s)
    app.openapi = _with_components(app, components)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(SearchAdmission, service=service, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


