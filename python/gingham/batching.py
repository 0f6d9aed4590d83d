"""Micro-batching of concurrent requests into one call.

Requests that arrive within ``window_s`` of the first pending one (or until ``max_batch`` items
are waiting) and share a batch key are handed to ``run_batch`` together, in a worker thread, and
each caller gets its own slice of the result. The queue is bounded: when ``max_pending`` items
are already waiting, ``submit`` raises :class:`QueueFull` at once instead of growing memory.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any


class QueueFull(RuntimeError):
    """Raised by :meth:`MicroBatcher.submit` when the bounded queue is full."""


@dataclass
class _Pending:
    items: list[Any] = field(default_factory=list)
    futures: list[asyncio.Future] = field(default_factory=list)
    first_at: float = 0.0


class MicroBatcher:
    """Collects items per key and runs ``run_batch(key, items) -> results`` once per batch.

    ``run_batch`` must return one result per item, in order; it runs in a thread so the event
    loop keeps accepting requests. ``max_batch=1`` or ``window_s=0`` disables batching.
    """

    def __init__(self, run_batch: Callable[[Hashable, Sequence[Any]], Sequence[Any]], *,
                 window_s: float = 0.002, max_batch: int = 64, max_pending: int = 1024,
                 workers: int = 1) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0; got {window_s}")
        if max_batch < 1 or max_pending < 1 or workers < 1:
            raise ValueError("max_batch, max_pending and workers must be >= 1")
        self._run_batch = run_batch
        self.window_s = window_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending: dict[Hashable, _Pending] = {}
        self._n_waiting = 0
        self._slots = asyncio.Semaphore(workers)
        self.batches_run = 0
        self.items_run = 0

    @property
    def n_waiting(self) -> int:
        """Items submitted whose results have not been delivered yet."""
        return self._n_waiting

    def ensure_room(self) -> None:
        """Raise :class:`QueueFull` now if a submit would be refused (lets a server answer 503
        before it reads and parses a request body)."""
        if self._n_waiting >= self.max_pending:
            raise QueueFull(f"{self._n_waiting} requests are waiting (limit {self.max_pending})")

    async def submit(self, key: Hashable, item: Any) -> Any:
        """Queue ``item`` under ``key`` and wait for its result (exceptions propagate)."""
        self.ensure_room()
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(first_at=time.perf_counter())
            if self.window_s > 0 and self.max_batch > 1:
                loop.call_later(self.window_s, self._flush, key, pending)
        pending.items.append(item)
        pending.futures.append(future)
        self._n_waiting += 1
        if len(pending.items) >= self.max_batch or self.window_s == 0 or self.max_batch == 1:
            self._flush(key, pending)
        try:
            return await future
        finally:
            self._n_waiting -= 1

    def _flush(self, key: Hashable, pending: _Pending) -> None:
        if self._pending.get(key) is not pending:
            return  # already flushed when it filled up
        del self._pending[key]
        asyncio.get_running_loop().create_task(self._run(key, pending))

    async def _run(self, key: Hashable, pending: _Pending) -> None:
        async with self._slots:
            try:
                results = await asyncio.to_thread(self._run_batch, key, pending.items)
                if len(results) != len(pending.items):
                    raise RuntimeError(f"batch returned {len(results)} results for "
                                       f"{len(pending.items)} items")
            except BaseException as exc:  # every caller of the batch sees the failure
                for future in pending.futures:
                    if not future.done():
                        future.set_exception(exc)
                return
        self.batches_run += 1
        self.items_run += len(pending.items)
        for future, result in zip(pending.futures, results):
            if not future.done():
                future.set_result(result)
