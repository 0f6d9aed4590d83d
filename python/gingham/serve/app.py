"""The FastAPI application behind :func:`gingham.serve.server.create_app`: it wires the
service, error handlers (``errors.py``), auth (``auth.py``), routes (``routes.py``), metrics
(``metrics.py``) and middleware (``middleware.py``) together.

Kept apart from ``server.py`` so that ``gingham --help`` and the CLI's argument parsing do not
import FastAPI.
"""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI

from .._version import __version__
from .auth import auth_dependencies
from .errors import install_error_handlers
from .limits import ServiceLimits
from .metrics import Metrics
from .middleware import BodyLimit, InternalErrors, MetricsMiddleware, SearchAdmission
from .routes import add_routes
from .service import Service


def build_app(index_path: str | os.PathLike, *, api_key: str | None, auth: str,
              batch_window_ms: float, max_batch: int, max_queue: int, max_pending_writes: int,
              max_body_bytes: int, request_timeout_s: float, write_timeout_s: float,
              limits: ServiceLimits | None) -> FastAPI:
    """See :func:`gingham.serve.server.create_app` (which checks the arguments)."""
    service = Service(index_path, batch_window_ms=batch_window_ms, max_batch=max_batch,
                      max_queue=max_queue, max_pending_writes=max_pending_writes, limits=limits)
    metrics = Metrics(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="gingham", version=__version__, lifespan=lifespan,
                  description="Late-interaction (ColBERT-style) retrieval over one index. "
                              "Scores are raw MaxSim sums.")
    app.state.service = service
    app.state.metrics = metrics
    install_error_handlers(app, metrics)
    read_auth, write_auth = auth_dependencies(api_key, auth)
    components = add_routes(app, service, metrics, read_auth, write_auth, request_timeout_s,
                            write_timeout_s)
    app.openapi = _with_components(app, components)  # type: ignore[method-assign]
    # Starlette runs the last one added first: metrics see every answer, 500s included.
    app.add_middleware(InternalErrors, metrics=metrics)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(SearchAdmission, service=service, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _with_components(app: FastAPI, components: dict) -> Callable[[], dict]:
    """FastAPI's schema plus the models of bodies that routes parse themselves."""
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in components.items():
                schemas.setdefault(name, definition)
        return app.openapi_schema
    return openapi
