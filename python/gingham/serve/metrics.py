"""Prometheus metrics of one app: request counts and latency, error codes, batch sizes, queue
depths and the index size (``GET /metrics``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .service import Service

_LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The metrics of one app, in its own registry (so several apps can share a process)."""

    def __init__(self, service: Service) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        self.registry = CollectorRegistry()
        self.requests = Counter("gingham_http_requests", "HTTP requests answered",
                                ["method", "endpoint", "status"], registry=self.registry)
        self.latency = Histogram("gingham_http_request_duration_seconds",
                                 "Time from request to response", ["method", "endpoint"],
                                 registry=self.registry, buckets=_LATENCY_BUCKETS)
        self.errors = Counter("gingham_errors", "Error responses by code", ["code"],
                              registry=self.registry)
        self.batch = Histogram("gingham_search_batch_queries", "Queries per batched search call",
                               registry=self.registry, buckets=_BATCH_BUCKETS)
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
        """The registry in the Prometheus text exposition format."""
        from prometheus_client import generate_latest
        return generate_latest(self.registry)
