"""Micro-batching of concurrent requests into one call.

Items are queued per batch key. While a worker is free, the oldest key's items are handed to
``run_batch`` together once ``max_batch`` of them wait or the oldest has waited ``window_s``;
while every worker is busy, items simply queue, and the moment a worker frees up it takes
*everything* of the oldest key that is waiting (up to ``max_batch``) without another window.
So under load the batch size follows the arrival rate (each batch is what arrived while the
previous one ran) and no request waits for a window on top of a busy worker. ``run_batch``
runs on the batcher's own worker thread(s), so the event loop keeps accepting and parsing
requests while a batch runs, and each caller gets its own slice of the result.

The queue is bounded: when ``max_pending`` items are waiting or running, ``submit`` raises
:class:`QueueFull` at once instead of growing memory. :meth:`MicroBatcher.pause` stops batches
from starting (submissions still queue, within the bound) until :meth:`MicroBatcher.resume`,
so a caller can hold work back, e.g. while it swaps what ``run_batch`` reads, or to fill the
queue deterministically in a test.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class QueueFull(RuntimeError):
    """Raised by :meth:`MicroBatcher.submit` when the bounded queue is full."""


class MicroBatcher:
    """Collects items per key and runs ``run_batch(key, items) -> results`` once per batch.

    ``run_batch`` must return one result per item, in order; it runs on a worker thread so the
    event loop keeps accepting requests. ``max_batch=1`` or ``window_s=0`` turns the window
    off (``max_batch=1``: one item per call, i.e. no batching). ``workers`` batches may run at
    once. ``arriving``: optional callable giving how many more items are on their way (e.g.
    requests whose bodies are still being read); while it is 0 an idle worker does not wait
    out the window, because nothing could join the batch.
    """

    def __init__(self, run_batch: Callable[[Hashable, Sequence[Any]], Sequence[Any]], *,
                 window_s: float = 0.002, max_batch: int = 64, max_pending: int = 1024,
                 workers: int = 1, arriving: Callable[[], int] | None = None) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0; got {window_s}")
        if max_batch < 1 or max_pending < 1 or workers < 1:
            raise ValueError("max_batch, max_pending and workers must be >= 1")
        self._run_batch = run_batch
        self.window_s = window_s
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.workers = workers
        self._arriving = arriving
        # key -> [(future, item)], oldest key first (a key is re-added at the end when its
        # queue empties and refills, so dict order is the order of each key's oldest item).
        self._queues: OrderedDict[Hashable, list[tuple[asyncio.Future, Any]]] = OrderedDict()
        self._first_at: dict[Hashable, float] = {}
        self._n_waiting = 0
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused = False
        self.batches_run = 0
        self.items_run = 0

    @property
    def n_waiting(self) -> int:
        """Items submitted whose results have not been delivered yet (queued or running)."""
        return self._n_waiting

    def ensure_room(self) -> None:
        """Raise :class:`QueueFull` now if a submit would be refused."""
        if self._n_waiting >= self.max_pending:
            raise QueueFull(f"{self._n_waiting} requests are waiting (limit {self.max_pending})")

    async def submit(self, key: Hashable, item: Any) -> Any:
        """Queue ``item`` under ``key`` and wait for its result (exceptions propagate).
        Cancelling the wait drops the item if its batch has not started yet."""
        self.ensure_room()
        loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = []
            self._first_at[key] = time.perf_counter()
        queue.append((future, item))
        self._n_waiting += 1
        try:
            self._dispatch(loop)
            return await future
        finally:
            self._n_waiting -= 1

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Start no new batch until :meth:`resume` (from any thread). Submissions keep
        queueing up to ``max_pending``; running batches finish; cancelled waits are dropped."""
        self._paused = True

    def resume(self) -> None:
        """Undo :meth:`pause` (from any thread): what queued meanwhile starts at once, as
        batches of up to ``max_batch``, without a window."""
        self._paused = False
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._dispatch, loop, True)

    def close(self) -> None:
        """Stop the worker threads (after running batches finish)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # ---- scheduling (event loop only) -------------------------------------------------------

    def _ready_in(self, key: Hashable, now: float, drain: bool) -> float:
        """Seconds until the oldest key's batch should start (<= 0: start now)."""
        if drain or len(self._queues[key]) >= self.max_batch or self.window_s == 0 or \
                self.max_batch == 1:
            return 0.0
        if self._arriving is not None and self._arriving() == 0:
            return 0.0
        return self._first_at[key] + self.window_s - now

    def _dispatch(self, loop: asyncio.AbstractEventLoop, drain: bool = False) -> None:
        # drain: a worker just finished, so what is queued waited through a whole batch
        # already; it goes at once, without a window.
        while not self._paused and self._running < self.workers and self._queues:
            key = next(iter(self._queues))
            queue = self._queues[key]
            live = [entry for entry in queue if not entry[0].done()]  # drop cancelled waits
            if not live:
                del self._queues[key], self._first_at[key]
                continue
            queue[:] = live
            wait = self._ready_in(key, time.perf_counter(), drain)
            if wait > 0:
                if self._timer is None:
                    self._timer = loop.call_later(wait, self._on_timer, loop)
                return
            batch, rest = live[:self.max_batch], live[self.max_batch:]
            if rest:
                queue[:] = rest
                self._first_at[key] = time.perf_counter()
                self._queues.move_to_end(key)  # other keys' older items go first
            else:
                del self._queues[key], self._first_at[key]
            self._running += 1
            loop.create_task(self._run(key, batch, loop))

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._dispatch(loop)

    async def _run(self, key: Hashable, batch: list[tuple[asyncio.Future, Any]],
                   loop: asyncio.AbstractEventLoop) -> None:
        futures = [f for f, _ in batch]
        items = [item for _, item in batch]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix="gingham-batch")
        try:
            results = await loop.run_in_executor(self._executor, self._run_batch, key, items)
            if len(results) != len(items):
                raise RuntimeError(f"batch returned {len(results)} results for "
                                   f"{len(items)} items")
        except BaseException as exc:  # every caller of the batch sees the failure
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        else:
            self.batches_run += 1
            self.items_run += len(items)
            for future, result in zip(futures, results):
                if not future.done():
                    future.set_result(result)
        finally:
            self._running -= 1
            self._dispatch(loop, drain=True)  # what queued meanwhile goes now, as one batch
