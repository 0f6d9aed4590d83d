"""``gingham serve``: the HTTP API over one index (needs ``pip install gingham[server]``)."""
from __future__ import annotations

import sys
from typing import Any


def add_parsers(sub: Any) -> None:
    """Register the serve command on ``sub``; without FastAPI/uvicorn the command only says
    what to install."""
    p = sub.add_parser("serve", help="serve an index over HTTP (FastAPI, loopback by default)",
                       description="Serve an index over HTTP: search, rerank, add/delete/get "
                                   "documents, stats, Prometheus metrics; OpenAPI docs at "
                                   "/docs.",
                       epilog="examples (my-index made by `gingham index` or "
                              "`gingham demo --index-dir my-index`):\n"
                              "  gingham serve my-index\n"
                              "  gingham serve my-index --port 9000 --api-key SECRET "
                              "--auth-scope writes")
    try:
        from ..serve.server import add_serve_arguments, run_from_args
    except ImportError as exc:  # FastAPI / uvicorn missing
        p.add_argument("index", help="index folder")
        p.set_defaults(func=lambda args, exc=exc: _server_missing(exc))
        return
    add_serve_arguments(p)
    p.set_defaults(func=run_from_args)


def _server_missing(exc: ImportError) -> int:
    print(f"gingham serve: error: needs `pip install gingham[server]` ({exc})", file=sys.stderr)
    return 2
