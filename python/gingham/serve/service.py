"""The engine side of ``gingham serve``: one open index, micro-batched searches, serialized writes.

HTTP lives in ``server.py``; this module knows nothing about requests. It owns

- the index (a ``gingham.Retriever`` when the index was built from text, so text queries are
  encoded with the index's own stored encoder; a plain ``gingham.Index`` otherwise),
- a :class:`~gingham.batching.MicroBatcher` that merges concurrent searches with equal
  parameters (:class:`SearchKey`) into one encoder call and one ``Index.search`` call,
- one writer thread: adds and deletes run there one at a time, in arrival order, while searches
  keep running on the snapshot the index serves; they see new documents once the commit is done.

Every request is validated here (shapes, dims, finiteness) *before* it joins a batch, so one bad
request never fails the other callers of its batch and nothing unchecked reaches the kernels.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..engine import validate as _validate
from ..engine.index import Index
from .batching import MicroBatcher, QueueFull

__all__ = ["QueueFull", "SearchKey", "Service", "ServiceLimits", "WriteQueueFull"]


class WriteQueueFull(QueueFull):
    """Too many writes are waiting for the writer thread."""


@dataclass(frozen=True)
class ServiceLimits:
    """Bounds applied to every request (the HTTP layer reports violations as 422)."""

    max_k: int = 1000
    max_queries: int = 64            # queries per search request
    max_text_chars: int = 10_000     # per query text and per document text
    max_query_tokens: int = 512      # rows of one query embedding
    max_doc_tokens: int = 8192       # rows of one document embedding
    max_documents: int = 1000        # documents per add / ids per delete or rerank
    max_subset: int = 100_000        # ids in a subset filter
    max_where_chars: int = 2000


@dataclass(frozen=True)
class SearchKey:
    """Parameters that must be equal for two requests to share one batched search call."""

    kind: str                        # "text" | "embedding"
    k: int
    mode: str
    hybrid: bool | None = None
    subset: tuple[str, ...] | None = None
    where: str | None = None
    params: tuple[Any, ...] | None = None
    with_documents: bool = False


class LimitError(ValueError):
    """A request exceeds one of :class:`ServiceLimits` (reported as code ``limit_exceeded``)."""


class _ReadWriteGate:
    """Readers share, a writer excludes them; used only for an Index without snapshot reads."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def read(self) -> "_Held":
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        return _Held(self._end_read)

    def write(self) -> "_Held":
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._writer = True
            while self._readers:
                self._cond.wait()
        return _Held(self._end_write)

    def _end_read(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    def _end_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


class _Held:
    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        self._release()


class _NoGate:
    def read(self) -> "_Held":
        return _Held(lambda: None)

    write = read


def open_backend(path: str | os.PathLike) -> tuple[Index, Any]:
    """Open the index at ``path`` -> (Index, Retriever or None).

    A Retriever is used when the index stores an encoder (it was built from text); an index of
    raw embeddings opens as a plain Index. FileNotFoundError when ``path`` is not there.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no index at {os.fspath(path)!r}")
    try:
        from ..text import retriever
    except ImportError:  # the text layer is optional
        retriever = None
    index = Index.open(path)
    # Retriever.build records its encoder settings under this key of Index.settings.
    key = getattr(retriever, "SETTINGS_KEY", "retriever")
    if retriever is not None and key in (getattr(index, "settings", None) or {}):
        close = getattr(index, "close", None)
        if close is not None:
            close()
        r = retriever.Retriever.open(path)
        return r.index, r
    return index, None


class Service:
    """One open index served to concurrent callers (see the module docstring)."""

    def __init__(self, index_path: str | os.PathLike, *, batch_window_ms: float = 2.0,
                 max_batch: int = 64, max_queue: int = 1024, max_pending_writes: int = 16,
                 limits: ServiceLimits | None = None) -> None:
        self.path = os.fspath(index_path)
        self.limits = limits or ServiceLimits()
        self.index, self.retriever = open_backend(index_path)
        self.dim = int(self.index.dim)
        # An Index with refresh() (the durable store) serves searches from a snapshot while a
        # commit is written; the simple store does not, so there writes exclude searches.
        self._gate = _NoGate() if hasattr(self.index, "refresh") else _ReadWriteGate()
        self.max_queue = max_queue
        self._searches_in_flight = 0
        self.batcher = MicroBatcher(self._run_search_batch, window_s=batch_window_ms / 1000.0,
                                    max_batch=max_batch, max_pending=max_queue,
                                    arriving=self._searches_arriving)
        self.max_pending_writes = max_pending_writes
        self._writes_waiting = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gingham-writer")
        self.started_at = time.time()
        #: Filled by the server with a callback(n_queries) observing batch sizes.
        self.on_batch: Callable[[int], None] | None = None

    @property
    def has_encoder(self) -> bool:
        return self.retriever is not None

    @property
    def writes_waiting(self) -> int:
        return self._writes_waiting

    def close(self) -> None:
        self.batcher.close()
        self._writer.shutdown(wait=True)
        for obj in (self.retriever, self.index):
            close = getattr(obj, "close", None)
            if close is not None:
                close()

    # ---- validation (runs in the request handler, before batching) ------------------------

    def check_k(self, k: int) -> int:
        if k > self.limits.max_k:
            raise LimitError(f"k must be at most {self.limits.max_k}; got {k}")
        return k

    def check_text(self, text: str, name: str) -> str:
        if len(text) > self.limits.max_text_chars:
            raise LimitError(f"{name} has {len(text)} characters; the limit is "
                             f"{self.limits.max_text_chars}")
        if not text.strip():
            raise ValueError(f"{name} must not be empty")
        return text

    def check_query_embedding(self, x: Any, name: str) -> np.ndarray:
        mat = _validate.float_matrix(_json_floats(x, name), name, self.dim)
        if mat.shape[0] > self.limits.max_query_tokens:
            raise LimitError(f"{name} has {mat.shape[0]} tokens; the limit is "
                             f"{self.limits.max_query_tokens}")
        return mat

    def check_doc_embedding(self, x: Any, name: str) -> np.ndarray:
        if isinstance(x, (list, np.ndarray)) and len(x) > self.limits.max_doc_tokens:
            raise LimitError(f"{name} has {len(x)} tokens; the limit is "
                             f"{self.limits.max_doc_tokens}")
        return _validate.float_matrix(_json_floats(x, name), name, self.dim)

    def check_count(self, n: int, limit: int, name: str) -> None:
        if n > limit:
            raise LimitError(f"{name} holds {n} entries; the limit is {limit}")
        if n == 0:
            raise ValueError(f"{name} must hold at least one entry")

    def check_filters(self, subset: Sequence[str] | None, where: str | None,
                      params: Sequence[Any] | None) -> None:
        if subset is not None and len(subset) > self.limits.max_subset:
            raise LimitError(f"subset holds {len(subset)} ids; the limit is "
                             f"{self.limits.max_subset}")
        if where is not None and len(where) > self.limits.max_where_chars:
            raise LimitError(f"where has {len(where)} characters; the limit is "
                             f"{self.limits.max_where_chars}")
        if params is not None and where is None:
            raise ValueError("params needs a where expression")

    # ---- admission (the HTTP layer calls these before it reads a search body) -------------

    def admit_search(self) -> None:
        """Count one search request in; QueueFull (at once, nothing read yet) when
        ``max_queue`` searches are already being read, waiting or running. Every admitted
        request must call :meth:`release_search` when it is answered."""
        if self._searches_in_flight >= self.max_queue:
            raise QueueFull(f"{self._searches_in_flight} search requests are in flight "
                            f"(limit {self.max_queue})")
        self._searches_in_flight += 1

    def release_search(self) -> None:
        self._searches_in_flight -= 1

    @property
    def searches_in_flight(self) -> int:
        return self._searches_in_flight

    def _searches_arriving(self) -> int:
        # Admitted requests not yet in the batcher: their bodies are still being read/parsed.
        # Searches submitted without admission (no HTTP layer): unknown, so keep the window.
        if self._searches_in_flight == 0:
            return 1
        return max(0, self._searches_in_flight - self.batcher.n_waiting)

    # ---- searching -----------------------------------------------------------------------

    async def search(self, key: SearchKey, queries: list[Any]) -> list[list[dict]]:
        """Queue validated ``queries`` (texts or float32 arrays) under ``key``; one hit list per
        query. Raises QueueFull at once when the queue is full."""
        return await self.batcher.submit(key, queries)

    def _run_search_batch(self, key: SearchKey, items: Sequence[list[Any]]) -> list[list]:
        flat = [q for item in items for q in item]
        if self.on_batch is not None:
            self.on_batch(len(flat))
        kwargs: dict[str, Any] = {"k": key.k, "mode": key.mode}
        if key.subset is not None:
            kwargs["subset"] = list(key.subset)
        if key.where is not None:
            kwargs["where"] = key.where
            if key.params is not None:
                kwargs["params"] = list(key.params)
        with self._gate.read():
            if key.kind == "text":
                if key.hybrid is not None:
                    kwargs["hybrid"] = key.hybrid
                results = self.retriever.search(flat, **kwargs)
                hits = [[_hit_dict(h) for h in per_query] for per_query in results]
            else:
                results = self.index.search(flat, **kwargs)
                hits = [[{"id": h.id, "score": float(h.score), "rank": int(h.rank)}
                         for h in per_query] for per_query in results]
                if key.with_documents:
                    for per_query in hits:
                        for h in per_query:
                            h.update(self._document(h["id"]))
        out, at = [], 0
        for item in items:
            out.append(hits[at:at + len(item)])
            at += len(item)
        return out

    def _needs(self, method: str) -> None:
        if not hasattr(self.index, method):
            raise NotImplementedError(f"this index ({type(self.index).__name__} at {self.path}) "
                                      f"does not support {method}()")

    def _document(self, doc_id: str) -> dict:
        self._needs("get")
        doc = self.index.get(doc_id)
        return {"text": doc.get("text"), "metadata": doc.get("metadata")}

    def encode_query(self, text: str) -> np.ndarray:
        """Encode one query text with the index's stored encoder (ValueError without one)."""
        if self.retriever is None:
            raise ValueError("this index was built from embeddings and has no encoder; "
                             "send query embeddings instead of text")
        return self.retriever.encoder.encode_query(text)

    def rerank(self, query: np.ndarray, ids: list[str], k: int | None) -> list[dict]:
        with self._gate.read():
            hits = self.index.rerank(query, ids, k=k) if k is not None \
                else self.index.rerank(query, ids)
        return [{"id": h.id, "score": float(h.score), "rank": int(h.rank)} for h in hits]

    def get(self, doc_id: str) -> dict:
        self._needs("get")
        with self._gate.read():
            doc = self.index.get(doc_id)
        return {"id": doc_id, "text": doc.get("text"), "metadata": doc.get("metadata")}

    def stats(self) -> dict:
        with self._gate.read():
            stats = dict(self.index.stats())
        stats["has_encoder"] = self.has_encoder
        return stats

    def n_docs(self) -> int:
        return len(self.index)

    # ---- writing (one writer thread) ------------------------------------------------------

    async def write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the writer thread, after the writes queued before it.
        Raises WriteQueueFull at once when ``max_pending_writes`` writes are waiting."""
        if self._writes_waiting >= self.max_pending_writes:
            raise WriteQueueFull(f"{self._writes_waiting} writes are waiting "
                                 f"(limit {self.max_pending_writes})")
        self._writes_waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await asyncio.wrap_future(self._writer.submit(self._locked, fn, args, kwargs),
                                             loop=loop)
        finally:
            self._writes_waiting -= 1

    def _locked(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        with self._gate.write():
            return fn(*args, **kwargs)

    def add_texts(self, ids: list[str], texts: list[str], metadata: list[Any] | None,
                  upsert: bool) -> None:
        """Encode and add documents through the Retriever (writer thread only)."""
        if self.retriever is None:
            raise ValueError("this index was built from embeddings and has no encoder; "
                             "send document embeddings")
        kwargs: dict[str, Any] = {"ids": ids, "metadata": metadata}
        if upsert:
            kwargs["upsert"] = True
        self.retriever.add(texts, **kwargs)

    def add_embeddings(self, ids: list[str], embeddings: list[np.ndarray],
                       metadata: list[Any] | None, texts: list[str | None] | None,
                       upsert: bool) -> None:
        """Add validated embeddings to the Index (writer thread only)."""
        kwargs: dict[str, Any] = {}
        if metadata is not None:
            kwargs["metadata"] = metadata
        if texts is not None and any(t is not None for t in texts):
            kwargs["texts"] = texts
        if upsert:
            kwargs["upsert"] = True
        self.index.add(ids, embeddings, **kwargs)

    def delete(self, ids: list[str], missing: str) -> int:
        """Delete documents (writer thread only); KeyError for unknown ids unless ignored."""
        self._needs("delete")
        if self.retriever is None:
            return int(self.index.delete(ids, missing=missing))
        if missing == "ignore":  # Retriever.delete raises on unknown ids
            known = set(self.index.ids())
            ids = [x for x in ids if x in known]
            if not ids:
                return 0
        return int(self.retriever.delete(ids))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _json_floats(x: Any, name: str) -> Any:
    """Nested JSON number lists -> float32 array; values float32 cannot hold are rejected
    (a silent cast would turn them into inf)."""
    if not isinstance(x, list):
        return x
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a rectangular n_tokens x dim list of numbers") from exc
    if arr.size:
        finite = np.isfinite(arr)
        if finite.all() and np.abs(arr).max() > _FLOAT32_MAX:
            raise ValueError(f"{name} holds a value beyond the float32 range")
        if not finite.all():
            raise ValueError(f"{name} holds a non-finite value (NaN or inf)")
    return arr.astype(np.float32)


def _hit_dict(h: Any) -> dict:
    if isinstance(h, dict):
        return {"id": h["id"], "score": float(h["score"]), "rank": int(h["rank"]),
                "text": h.get("text"), "metadata": h.get("metadata")}
    return {"id": h.id, "score": float(h.score), "rank": int(h.rank)}
