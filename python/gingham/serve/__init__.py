"""The HTTP server (FastAPI): service, micro-batching, models, app. Needs ``gingham[server]``."""
