"""The HTTP routes: each parses its body, has the service check it, and awaits the service.

Errors are raised, never answered here: :class:`~gingham.serve.limits.InvalidArgument` for a
request the checks reject, ``UnknownIdError`` for an unknown id, :class:`ApiError` for a
timeout; ``errors.py`` turns them into answers.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from . import models as m
from .errors import ERROR_RESPONSES, ApiError
from .limits import InvalidArgument
from .metrics import Metrics
from .service import SearchKey, Service

_NO_ENCODER = "this index was built from embeddings and has no encoder"


async def _with_timeout(awaitable: Awaitable[Any], seconds: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise ApiError(504, "timeout", f"{what} did not finish within {seconds:g} s") from None


def _json_body(model: type, components: dict) -> dict:
    """openapi_extra documenting ``model`` as the JSON body of a route that parses its body
    itself; nested models go to ``components`` (merged into the schema by the app)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


def _search_items(service: Service, body: m.SearchRequest) -> tuple[str, list[Any]]:
    """The checked queries of a search body -> ("text", texts) or ("embedding", arrays)."""
    limits = service.limits
    given = [n for n in ("query", "queries", "embedding", "embeddings")
             if getattr(body, n) is not None]
    if len(given) != 1:
        raise InvalidArgument("give exactly one of query, queries, embedding, embeddings; got "
                              f"{', '.join(given) or 'none'}")
    service.check_k(body.k)
    service.check_filters(body.subset, body.where, body.params)
    if body.query is not None or body.queries is not None:
        texts = [body.query] if body.query is not None else body.queries
        service.check_count(len(texts), limits.max_queries, "queries")
        items: list[Any] = [service.check_text(t, f"queries[{i}]") for i, t in enumerate(texts)]
        if not service.has_encoder:
            raise InvalidArgument(f"{_NO_ENCODER}; send query embeddings instead of text")
        service.check_hybrid(body.hybrid)
        return "text", items
    mats = [body.embedding] if body.embedding is not None else body.embeddings
    service.check_count(len(mats), limits.max_queries, "embeddings")
    names = ["embedding"] if body.embedding is not None else \
        [f"embeddings[{i}]" for i in range(len(mats))]
    items = [service.check_query_embedding(m.as_array(q, name), name)
             for q, name in zip(mats, names)]
    if body.hybrid:
        raise InvalidArgument("hybrid search needs text queries")
    return "embedding", items


def _add_call(service: Service, body: m.AddRequest) -> tuple[Callable[..., Any], tuple]:
    """The checked documents of an add body -> (service write function, its arguments)."""
    docs = body.documents
    service.check_count(len(docs), service.limits.max_documents, "documents")
    ids = [d.id for d in docs]
    service.check_unique(ids, "documents ids")
    metadata = [d.metadata for d in docs] if any(d.metadata is not None for d in docs) \
        else None
    if service.has_encoder:
        bad = [i for i, d in enumerate(docs) if d.text is None or d.embedding is not None]
        if bad:
            raise InvalidArgument(f"documents[{bad[0]}]: this index encodes text itself; send "
                                  "'text' and no 'embedding'")
        texts = [service.check_text(d.text, f"documents[{i}].text") for i, d in enumerate(docs)]
        return service.add_texts, (ids, texts, metadata, body.upsert)
    bad = [i for i, d in enumerate(docs) if d.embedding is None]
    if bad:
        raise InvalidArgument(f"documents[{bad[0]}]: {_NO_ENCODER}; send 'embedding' "
                              "(n_tokens x dim floats)")
    for i, d in enumerate(docs):
        if d.text is not None:
            service.check_text(d.text, f"documents[{i}].text")
    embeddings = [service.check_doc_embedding(m.as_array(d.embedding, f"documents[{i}].embedding"),
                                              f"documents[{i}].embedding")
                  for i, d in enumerate(docs)]
    return service.add_embeddings, (ids, embeddings, metadata, [d.text for d in docs],
                                    body.upsert)


def add_routes(app: FastAPI, service: Service, metrics: Metrics, read_auth: Callable,
               write_auth: Callable, timeout_s: float, write_timeout_s: float) -> dict:
    """Adds the routes; returns schemas that the OpenAPI components must also hold."""
    limits = service.limits
    components: dict = {}
    read = [Depends(read_auth)]
    write = [Depends(write_auth)]

    @app.post("/search", response_model=m.SearchResponse, dependencies=read,
              responses=ERROR_RESPONSES,
              summary="Top-k documents for one or many queries (text or embeddings)",
              openapi_extra=_json_body(m.SearchRequest, components))
    async def search(request: Request) -> JSONResponse:
        # A full queue has answered 503 already (SearchAdmission). The body is parsed here,
        # not by FastAPI: pydantic's JSON mode parses embeddings ~6x faster than json.loads +
        # validate.
        start = time.perf_counter()
        body = m.SearchRequest.model_validate_json(await request.body())
        kind, items = _search_items(service, body)
        key = SearchKey(kind=kind, k=body.k, mode=body.mode, hybrid=body.hybrid,
                        subset=tuple(body.subset) if body.subset is not None else None,
                        where=body.where,
                        params=tuple(body.params) if body.params is not None else None,
                        with_documents=body.with_documents)
        results = await _with_timeout(service.search(key, items), timeout_s, "search")
        return JSONResponse({"results": results,
                             "took_ms": 1000.0 * (time.perf_counter() - start)})

    @app.post("/rerank", response_model=m.RerankResponse, dependencies=read,
              responses=ERROR_RESPONSES,
              summary="Exact MaxSim of one query against the given documents, best first")
    async def rerank(body: m.RerankRequest) -> dict:
        start = time.perf_counter()
        if (body.query is None) == (body.embedding is None):
            raise InvalidArgument("give exactly one of query (text) and embedding")
        service.check_count(len(body.ids), limits.max_documents, "ids")
        service.check_unique(body.ids, "ids")
        for i, x in enumerate(body.ids):
            service.check_id(x, f"ids[{i}]")
        if body.k is not None:
            service.check_k(body.k)
        if body.query is not None:
            text = service.check_text(body.query, "query")
            query = await _with_timeout(asyncio.to_thread(service.encode_query, text),
                                        timeout_s, "query encoding")
        else:
            query = service.check_query_embedding(m.as_array(body.embedding, "embedding"),
                                                  "embedding")
        hits = await _with_timeout(asyncio.to_thread(service.rerank, query, body.ids, body.k),
                                   timeout_s, "rerank")
        return {"results": hits, "took_ms": 1000.0 * (time.perf_counter() - start)}

    @app.post("/documents", response_model=m.AddResponse, dependencies=write,
              responses=ERROR_RESPONSES,
              summary="Add documents (texts for a text index, embeddings otherwise); "
                      "upsert=true replaces documents whose id exists")
    async def add_documents(body: m.AddRequest) -> dict:
        fn, args = _add_call(service, body)
        await _with_timeout(service.write(fn, *args), write_timeout_s, "add")
        ids = args[0]
        return {"added": len(ids), "ids": ids, "n_docs": service.n_docs()}

    async def _delete(ids: list[str], missing: str) -> dict:
        service.check_count(len(ids), limits.max_documents, "ids")
        for i, x in enumerate(ids):
            service.check_id(x, f"ids[{i}]")
        n = await _with_timeout(service.write(service.delete, ids, missing), write_timeout_s,
                                "delete")
        return {"deleted": n, "n_docs": service.n_docs()}

    @app.delete("/documents", response_model=m.DeleteResponse, dependencies=write,
                responses=ERROR_RESPONSES, summary="Delete documents by id")
    async def delete_documents(body: m.DeleteRequest) -> dict:
        return await _delete(body.ids, body.missing)

    @app.delete("/documents/{doc_id:path}", response_model=m.DeleteResponse, dependencies=write,
                responses=ERROR_RESPONSES, summary="Delete one document")
    async def delete_document(doc_id: str) -> dict:
        return await _delete([doc_id], "raise")

    @app.get("/documents/{doc_id:path}", response_model=m.Document, dependencies=read,
             responses=ERROR_RESPONSES, summary="A document's text and metadata")
    async def get_document(doc_id: str) -> dict:
        return await asyncio.to_thread(service.get, service.check_id(doc_id))

    @app.get("/health", response_model=m.Health, summary="Liveness (never needs a key)")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/stats", dependencies=read, responses=ERROR_RESPONSES,
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
