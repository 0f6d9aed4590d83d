"""``gingham serve``: an HTTP API over one index (FastAPI + uvicorn; ``gingham[server]``).

    app = create_app("my-index", api_key="s3cret", auth="writes")
    serve("my-index", host="127.0.0.1", port=8000)

Endpoints (OpenAPI schema at /openapi.json, interactive docs at /docs): POST /search,
POST /rerank, POST /documents, DELETE /documents, GET|DELETE /documents/{id}, GET /health,
GET /stats, GET /metrics (Prometheus text). Concurrent searches with equal parameters are merged
into one batched call (``service.Service``); writes run one at a time on a writer thread.

Every error is JSON ``{"error": {"code": ..., "message": ...}}`` with a stable code:
invalid_request / invalid_argument / limit_exceeded (422), unauthorized (401), not_found (404),
method_not_allowed (405), payload_too_large (413), overloaded (503, with Retry-After),
timeout (504), internal (500: a bug, logged).

This module imports neither FastAPI nor the engine until an app is built, so that the CLI can
build ``gingham serve``'s flags cheaply; the flags of the per-request limits are generated from
:class:`~gingham.serve.limits.ServiceLimits`.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from .limits import ServiceLimits, limit_fields

log = logging.getLogger("gingham.server")

AUTH_SCOPES = ("all", "writes")
API_KEY_ENV = "GINGHAM_API_KEY"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ---- the app -----------------------------------------------------------------------------------

def create_app(index_path: str | os.PathLike, *, api_key: str | None = None, auth: str = "all",
               batch_window_ms: float = 2.0, max_batch: int = 64, max_queue: int = 1024,
               max_pending_writes: int = 16, max_body_bytes: int = 32 << 20,
               request_timeout_s: float = 30.0, write_timeout_s: float = 600.0,
               limits: ServiceLimits | None = None) -> Any:
    """The FastAPI app serving the index at ``index_path`` (opened now: FileNotFoundError when
    it is missing, ValueError / StorageError when it is not a readable index).

    api_key: bearer token required for ``auth`` = "all" endpoints (everything but /health and
    the docs) or "writes" (POST/DELETE /documents); None disables auth. batch_window_ms /
    max_batch: micro-batching window and size (max_batch=1 turns batching off); max_queue:
    search requests in flight before 503; max_pending_writes: writes waiting before 503;
    max_body_bytes: larger bodies get 413; request_timeout_s: a search/rerank not answered by
    then gets 504 (writes use write_timeout_s; a timed-out write may still commit).
    limits: per-request bounds (default ``ServiceLimits()``).
    """
    if auth not in AUTH_SCOPES:
        raise ValueError(f"auth must be one of {', '.join(AUTH_SCOPES)}; got {auth!r}")
    if api_key is not None and not api_key:
        raise ValueError("api_key must not be empty (pass None to disable auth)")
    from .app import build_app
    return build_app(index_path, api_key=api_key, auth=auth, batch_window_ms=batch_window_ms,
                     max_batch=max_batch, max_queue=max_queue,
                     max_pending_writes=max_pending_writes, max_body_bytes=max_body_bytes,
                     request_timeout_s=request_timeout_s, write_timeout_s=write_timeout_s,
                     limits=limits)


# ---- running -----------------------------------------------------------------------------------

def serve(index_path: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info", **app_options: Any) -> None:
    """Serve ``index_path`` with uvicorn until interrupted (options as in :func:`create_app`)."""
    _run(create_app(index_path, **app_options), host, port, log_level)


def _run(app: Any, host: str, port: int, log_level: str) -> None:
    import uvicorn
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gingham serve`` (the CLI calls this, then :func:`run_from_args`).
    One ``--max-...`` flag per :class:`ServiceLimits` field, with its help and default (the
    per-request limits, then the index's own, e.g. ``--max-segments``)."""
    parser.add_argument("index", help="index folder")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--api-key", default=None,
                        help=f"require this bearer token (default: ${API_KEY_ENV} if set)")
    parser.add_argument("--auth-scope", choices=AUTH_SCOPES, default="all",
                        help="what the API key protects: all endpoints but /health and the "
                             "docs, or only writes (default all)")
    parser.add_argument("--batch-window-ms", type=float, default=2.0,
                        help="how long an idle server waits for more searches to join a batch "
                             "(default 2; 0: start at once; searches that queue while a batch "
                             "runs are batched either way)")
    parser.add_argument("--max-batch", type=int, default=64,
                        help="requests per batched search call (default 64; 1 turns batching "
                             "off)")
    parser.add_argument("--max-queue", type=int, default=1024,
                        help="search requests in flight (being read, waiting or running) "
                             "before 503 (default 1024)")
    parser.add_argument("--max-pending-writes", type=int, default=16,
                        help="writes waiting for the writer thread before 503 (default 16)")
    parser.add_argument("--max-body-mb", type=float, default=32.0,
                        help="largest request body in MiB (default 32)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds before a search or rerank answers 504 (default 30)")
    parser.add_argument("--write-timeout", type=float, default=600.0,
                        help="seconds before an add or delete answers 504; the write may still "
                             "commit (default 600)")
    limits = parser.add_argument_group("per-request limits (a request over one gets 422 "
                                       "limit_exceeded)")
    for name, default, text in limit_fields("request"):
        limits.add_argument(_flag(name), dest=name, type=type(default), default=default,
                            metavar="N", help=f"{text} (default {default})")
    upkeep = parser.add_argument_group("index upkeep")
    for name, default, text in limit_fields("index"):
        upkeep.add_argument(_flag(name), dest=name, type=type(default), default=default,
                            metavar="N", help=f"{text} (default {default})")
    levels = ["critical", "error", "warning", "info", "debug"]
    parser.add_argument("--log-level", default="info", choices=levels,
                        help=f"server log level: {', '.join(levels)} (default info)")


def app_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """create_app keyword arguments from parsed ``gingham serve`` arguments (ValueError for a
    limit that is not a positive integer)."""
    limits = ServiceLimits(**{name: getattr(args, name) for name, _, _ in limit_fields()})
    return {"api_key": args.api_key or os.environ.get(API_KEY_ENV) or None,
            "auth": args.auth_scope, "batch_window_ms": args.batch_window_ms,
            "max_batch": args.max_batch, "max_queue": args.max_queue,
            "max_pending_writes": args.max_pending_writes,
            "max_body_bytes": int(args.max_body_mb * (1 << 20)),
            "request_timeout_s": args.timeout, "write_timeout_s": args.write_timeout,
            "limits": limits}


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``gingham serve``: 0 after a clean shutdown; 2, with one line on stderr,
    when the settings are invalid or the index cannot be opened."""
    from ..storage import StorageError
    try:
        options = app_options_from_args(args)
        app = create_app(args.index, **options)
    except (FileNotFoundError, StorageError, ValueError) as exc:
        print(f"gingham serve: error: {exc}", file=sys.stderr)
        return 2
    if args.host not in LOOPBACK and options["api_key"] is None:
        log.warning("serving on %s without an API key: anyone who can reach it can read and "
                    "write the index (set --api-key or %s)", args.host, API_KEY_ENV)
    _run(app, args.host, args.port, args.log_level)
    return 0
