"""The HTTP server (``gingham[server]``: FastAPI, uvicorn, prometheus-client).

Files: ``server.py`` (create_app, serve, the ``gingham serve`` flags), ``app.py`` (the app
factory), ``routes.py``, ``errors.py`` (exceptions -> JSON answers), ``auth.py``,
``middleware.py``, ``metrics.py``, ``models.py`` (request/response bodies), ``service.py`` (the
open index, batching, the writer thread), ``batching.py`` (MicroBatcher), ``limits.py``
(ServiceLimits and the validation errors). Importing this package imports no FastAPI.
"""
from .limits import InvalidArgument, LimitError, ServiceLimits
from .server import add_serve_arguments, app_options_from_args, create_app, run_from_args, serve

__all__ = ["InvalidArgument", "LimitError", "ServiceLimits", "add_serve_arguments",
           "app_options_from_args", "create_app", "run_from_args", "serve"]
