"""The engine side of ``gingham serve``: one open index, micro-batched searches, serialized writes.

HTTP lives in ``app.py`` and ``routes.py``; this module knows nothing about requests. It owns

- the index (a ``gingham.Retriever`` when the index was built from text, so text queries are
  encoded with the index's own stored encoder; a plain ``gingham.Index`` otherwise),
- a :class:`~gingham.serve.batching.MicroBatcher` that merges concurrent searches with equal
  parameters (:class:`SearchKey`) into one encoder call and one ``Index.search`` call,
- one writer thread: adds and deletes run there one at a time, in arrival order, while searches
  keep running on the snapshot the index serves; they see new documents once the commit is done.
  After an add that leaves more than ``ServiceLimits.max_segments`` segments, the writer merges
  the smallest ones (``Index.compact(max_segments=...)``) before it takes the next write, so a
  stream of small writes keeps the segment count, and with it the server's memory, bounded.

Every request is validated here (shapes, dims, finiteness, limits, duplicate ids) *before* it
joins a batch or reaches the engine, so one bad request never fails the other callers of its
batch and nothing unchecked reaches the kernels. Rejections raise
:class:`~gingham.serve.limits.InvalidArgument` (or its subclass ``LimitError``); every other
exception is a bug.
"""
from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..engine import validate as _validate
from ..engine.index import Index
from ..storage import DuplicateIdError
from .batching import MicroBatcher, QueueFull
from .limits import InvalidArgument, LimitError, ServiceLimits

__all__ = ["InvalidArgument", "LimitError", "QueueFull", "SearchKey", "Service",
           "ServiceLimits", "WriteQueueFull", "open_backend"]


class WriteQueueFull(QueueFull):
    """Too many writes are waiting for the writer thread."""


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


def open_backend(path: str | os.PathLike) -> tuple[Index, Any]:
    """Open the index at ``path`` -> (Index, Retriever or None).

    A Retriever is used when the index stores an encoder (it was built from text); an index of
    raw embeddings opens as a plain Index, without importing the text layer.
    FileNotFoundError when ``path`` is not there.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no index at {os.fspath(path)!r}")
    from ..distributed import faces  # no Ray unless the folder is sharded and asks for it
    if faces.is_sharded(path):
        return faces.open_served(os.fspath(path))
    index = Index.open(path)
    # The key under which Retriever.build records its encoder (text.retriever.SETTINGS_KEY);
    # spelled out so that an embeddings index never imports torch.
    if "retriever" not in index.settings:
        return index, None
    index.close()
    from ..text.retriever import Retriever
    r = Retriever.open(path)
    return r.index, r


class Service:
    """One open index served to concurrent callers (see the module docstring)."""

    def __init__(self, index_path: str | os.PathLike, *, batch_window_ms: float = 2.0,
                 max_batch: int = 64, max_queue: int = 1024, max_pending_writes: int = 16,
                 limits: ServiceLimits | None = None) -> None:
        self.path = os.fspath(index_path)
        self.limits = limits or ServiceLimits()
        self.index, self.retriever = open_backend(index_path)
        self.dim = int(self.index.dim)
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
        self.index.close()

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
            raise InvalidArgument(f"{name} must not be empty")
        return text

    def check_query_embedding(self, x: Any, name: str) -> np.ndarray:
        """Nested lists or a float32 array -> (n_tokens, dim) float32, finite."""
        mat = self._float_matrix(x, name)
        if mat.shape[0] > self.limits.max_query_tokens:
            raise LimitError(f"{name} has {mat.shape[0]} tokens; the limit is "
                             f"{self.limits.max_query_tokens}")
        return mat

    def check_doc_embedding(self, x: Any, name: str) -> np.ndarray:
        """Nested lists or a float32 array -> (n_tokens, dim) float32, finite."""
        if isinstance(x, (list, np.ndarray)) and len(x) > self.limits.max_doc_tokens:
            raise LimitError(f"{name} has {len(x)} tokens; the limit is "
                             f"{self.limits.max_doc_tokens}")
        return self._float_matrix(x, name)

    def _float_matrix(self, x: Any, name: str) -> np.ndarray:
        try:  # float_matrix only checks its input: whatever it raises is about the request
            return _validate.float_matrix(_json_floats(x, name), name, self.dim)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(str(exc)) from None

    def check_count(self, n: int, limit: int, name: str) -> None:
        if n > limit:
            raise LimitError(f"{name} holds {n} entries; the limit is {limit}")
        if n == 0:
            raise InvalidArgument(f"{name} must hold at least one entry")

    def check_unique(self, ids: Sequence[str], name: str) -> None:
        seen: set[str] = set()
        for x in ids:
            if x in seen:
                raise InvalidArgument(f"{name} holds {x!r} more than once")
            seen.add(x)

    def check_id(self, doc_id: str, name: str = "id") -> str:
        if not doc_id:
            raise InvalidArgument(f"{name} must be a non-empty string")
        return doc_id

    def check_filters(self, subset: Sequence[str] | None, where: str | None,
                      params: Sequence[Any] | None) -> None:
        if subset is not None and len(subset) > self.limits.max_subset:
            raise LimitError(f"subset holds {len(subset)} ids; the limit is "
                             f"{self.limits.max_subset}")
        if where is not None and len(where) > self.limits.max_where_chars:
            raise LimitError(f"where has {len(where)} characters; the limit is "
                             f"{self.limits.max_where_chars}")
        if where is not None and not where.strip():
            raise InvalidArgument("where must be a non-empty SQL expression")
        if params is not None and where is None:
            raise InvalidArgument("params needs a where expression")

    def check_hybrid(self, hybrid: bool | None) -> None:
        if hybrid and self.retriever is not None and self.retriever.bm25 is None:
            raise InvalidArgument("hybrid search needs BM25; this index was built without it")

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
        with _where_errors(key.where):
            if key.kind == "text":  # the Retriever's hits carry text and metadata already
                if key.hybrid is not None:
                    kwargs["hybrid"] = key.hybrid
                hits = [[_hit(h) for h in per_query]
                        for per_query in self.retriever.search(flat, **kwargs)]
            elif key.with_documents:  # documents of every hit from one catalog query
                hits = [[_hit(h) for h in per_query] for per_query in
                        self.index.search(flat, with_documents=True, **kwargs)]
            else:
                hits = [[{"id": h.id, "score": float(h.score), "rank": int(h.rank)}
                         for h in per_query] for per_query in self.index.search(flat, **kwargs)]
        out, at = [], 0
        for item in items:
            out.append(hits[at:at + len(item)])
            at += len(item)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """Encode one query text with the index's stored encoder."""
        if self.retriever is None:
            raise InvalidArgument("this index was built from embeddings and has no encoder; "
                                  "send query embeddings instead of text")
        return self.retriever.encoder.encode_query(text)

    def rerank(self, query: np.ndarray, ids: list[str], k: int | None) -> list[dict]:
        """Exact MaxSim of a validated query against ``ids``; UnknownIdError (a KeyError)
        for an id that is not in the index."""
        hits = self.index.rerank(query, ids, k=k)
        return [{"id": h.id, "score": float(h.score), "rank": int(h.rank)} for h in hits]

    def get(self, doc_id: str) -> dict:
        """{"id", "text", "metadata"}; UnknownIdError (a KeyError) if unknown."""
        doc = self.index.get(doc_id)
        return {"id": doc_id, "text": doc.get("text"), "metadata": doc.get("metadata")}

    def stats(self) -> dict:
        stats = dict(self.index.stats())
        stats["has_encoder"] = self.has_encoder
        return stats

    def n_docs(self) -> int:
        return len(self.index)

    # ---- writing (one writer thread) ------------------------------------------------------

    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the writer thread, after the writes queued before it.
        Raises WriteQueueFull at once when ``max_pending_writes`` writes are waiting."""
        if self._writes_waiting >= self.max_pending_writes:
            raise WriteQueueFull(f"{self._writes_waiting} writes are waiting "
                                 f"(limit {self.max_pending_writes})")
        self._writes_waiting += 1
        try:
            loop = asyncio.get_running_loop()
            return await asyncio.wrap_future(self._writer.submit(fn, *args), loop=loop)
        finally:
            self._writes_waiting -= 1

    def add_texts(self, ids: list[str], texts: list[str], metadata: list[Any] | None,
                  upsert: bool) -> None:
        """Encode and add (or with ``upsert`` replace) documents through the Retriever
        (writer thread only). InvalidArgument, before anything is encoded, for an id that is
        already in the index when ``upsert`` is False."""
        if self.retriever is None:
            raise InvalidArgument("this index was built from embeddings and has no encoder; "
                                  "send document embeddings")
        try:
            self.retriever.add(texts, ids, metadata, upsert=upsert)
        except DuplicateIdError as exc:  # raised before anything is encoded or written
            raise InvalidArgument(str(exc)) from None
        self.merge_segments()

    def add_embeddings(self, ids: list[str], embeddings: list[np.ndarray],
                       metadata: list[Any] | None, texts: list[str | None] | None,
                       upsert: bool) -> None:
        """Add (or with ``upsert`` replace) validated embeddings (writer thread only);
        InvalidArgument for an id already in the index when ``upsert`` is False."""
        if texts is not None and all(t is None for t in texts):
            texts = None
        try:
            self.index.add(ids, embeddings, metadata, texts, upsert=upsert)
        except DuplicateIdError as exc:  # raised before anything is written
            raise InvalidArgument(str(exc)) from None
        self.merge_segments()

    def merge_segments(self) -> None:
        """Merge the smallest segments while the index holds more than
        ``limits.max_segments`` (writer thread only; searches keep the snapshot they took)."""
        self.index.compact(max_segments=self.limits.max_segments)

    def delete(self, ids: list[str], missing: str) -> int:
        """Delete documents (writer thread only) -> number deleted; UnknownIdError (a
        KeyError) for unknown ids unless ``missing`` is "ignore"."""
        ids = list(dict.fromkeys(ids))  # an id named twice is deleted once
        if self.retriever is None:
            return int(self.index.delete(ids, missing=missing))
        return int(self.retriever.delete(ids, missing=missing))


@contextmanager
def _where_errors(where: str | None) -> Iterator[None]:
    """Reports a plain ValueError of a search with a ``where`` filter as InvalidArgument: the
    expression is the one input that only SQLite can check, and the catalog raises ValueError
    naming it when it does not compile or run. Without a filter nothing is converted."""
    try:
        yield
    except ValueError as exc:
        if where is None or type(exc) is not ValueError:
            raise
        raise InvalidArgument(str(exc)) from exc


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _json_floats(x: Any, name: str) -> Any:
    """Nested JSON number lists -> float32 array; values float32 cannot hold are rejected
    (a silent cast would turn them into inf)."""
    if not isinstance(x, list):
        return x
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (ValueError, TypeError):
        raise InvalidArgument(f"{name} must be a rectangular n_tokens x dim list of "
                              "numbers") from None
    if arr.size:
        finite = np.isfinite(arr)
        if finite.all() and np.abs(arr).max() > _FLOAT32_MAX:
            raise InvalidArgument(f"{name} holds a value beyond the float32 range")
        if not finite.all():
            raise InvalidArgument(f"{name} holds a non-finite value (NaN or inf)")
    return arr.astype(np.float32)


def _hit(h: dict) -> dict:
    return {"id": h["id"], "score": float(h["score"]), "rank": int(h["rank"]),
            "text": h.get("text"), "metadata": h.get("metadata")}
