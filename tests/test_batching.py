"""MicroBatcher: concurrent submissions are grouped per key, results go to the right caller.

Tests that need a batch to be running hold it on a threading.Event inside ``run_batch`` and
wait for states (a batch started, n items waiting) with a deadline, never for a time.
"""
import asyncio
import threading

import numpy as np
import pytest

import gingham
from gingham.serve.batching import MicroBatcher, QueueFull


async def until(condition, what, timeout_s=20.0):
    """Return once ``condition()`` holds (yielding to the loop); AssertionError naming
    ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.001)


def gated_batches(record):
    """A run_batch that appends record(key, items) to seen and then blocks until release is
    set, so a test can queue requests behind a running batch -> (run_batch, release, seen)."""
    release = threading.Event()
    seen = []

    def run_batch(key, items):
        seen.append(record(key, items))
        assert release.wait(20), "the test never released the batch"
        return list(items)

    return run_batch, release, seen


def _corpus():
    rng = np.random.default_rng(3)
    tokens = rng.standard_normal((400, 16)).astype(np.float32)
    return tokens, np.arange(0, 401, 8)


def test_batched_results_match_individual_searches():
    tokens, offsets = _corpus()
    rng = np.random.default_rng(4)
    queries = [rng.standard_normal((int(rng.integers(1, 9)), 16)).astype(np.float32)
               for _ in range(24)]
    seen_batches = []

    def run_batch(k, items):
        seen_batches.append(len(items))
        _, ids = gingham.exact_search(list(items), tokens, offsets, k)
        return list(ids)

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.05, max_batch=10)
        return await asyncio.gather(*(batcher.submit(5, q) for q in queries)), batcher

    results, batcher = asyncio.run(main())
    for q, got in zip(queries, results):
        _, expected = gingham.exact_search(q, tokens, offsets, 5)
        np.testing.assert_array_equal(got, expected[0])
    assert sum(seen_batches) == len(queries)
    assert max(seen_batches) == 10  # full batches flushed at max_batch
    assert len(seen_batches) < len(queries)
    assert batcher.batches_run == len(seen_batches)


def test_keys_are_never_mixed():
    def run_batch(key, items):
        assert all(item[0] == key for item in items)
        return [item[1] * 2 for item in items]

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.01, max_batch=100)
        return await asyncio.gather(*(batcher.submit(i % 3, (i % 3, i)) for i in range(30)))

    assert asyncio.run(main()) == [2 * i for i in range(30)]


def test_errors_reach_every_caller_of_the_batch():
    def run_batch(key, items):
        raise ValueError("boom")

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.01)
        return await asyncio.gather(*(batcher.submit(0, i) for i in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, ValueError) and str(r) == "boom" for r in results)


def test_queue_full_raises_without_waiting():
    run_batch, release, seen = gated_batches(lambda key, items: list(items))

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.0, max_batch=1, max_pending=2)
        first = [asyncio.ensure_future(batcher.submit(0, i)) for i in range(2)]
        await until(lambda: batcher.n_waiting == 2 and seen, "one running, one queued")
        with pytest.raises(QueueFull):
            await batcher.submit(0, 99)
        release.set()
        return await asyncio.gather(*first)

    assert asyncio.run(main()) == [0, 1]
    assert seen == [[0], [1]]


def test_bad_settings_rejected():
    with pytest.raises(ValueError, match="window_s"):
        MicroBatcher(lambda k, items: items, window_s=-1)
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatcher(lambda k, items: items, max_batch=0)


def test_ensure_room_refuses_before_submit():
    run_batch, release, seen = gated_batches(lambda key, items: list(items))

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.0, max_batch=1, max_pending=1)
        batcher.ensure_room()  # empty queue: no error
        first = asyncio.ensure_future(batcher.submit(0, 1))
        await until(lambda: seen, "the first batch to start")
        with pytest.raises(QueueFull):
            batcher.ensure_room()
        release.set()
        assert await first == 1
        batcher.ensure_room()

    asyncio.run(main())


def test_items_queued_during_a_batch_run_together_next_without_a_window():
    run_batch, release, seen = gated_batches(lambda key, items: list(items))

    async def main():
        # A 60 s window: an idle worker would wait it out for more items whenever more are
        # said to be arriving, which is the case once the first batch runs. The items queued
        # behind the running batch must go at once when it ends, as one batch.
        batcher = MicroBatcher(run_batch, window_s=60.0, max_batch=64,
                               arriving=lambda: 1 if seen else 0)
        first = asyncio.ensure_future(batcher.submit(0, "a"))
        await until(lambda: seen, "the first batch to start")
        rest = [asyncio.ensure_future(batcher.submit(0, i)) for i in range(20)]
        await until(lambda: batcher.n_waiting == 21, "20 items queued behind the first")
        assert len(seen) == 1
        release.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest), 20)

    a, *rest = asyncio.run(main())
    assert a == "a" and rest == list(range(20))
    assert seen == [["a"], list(range(20))]  # drained as one batch, not one per window


def test_max_batch_splits_a_drained_queue_in_order():
    run_batch, release, seen = gated_batches(lambda key, items: list(items))

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.0, max_batch=4)
        futures = [asyncio.ensure_future(batcher.submit(0, 0))]
        await until(lambda: seen, "the first batch to start")
        futures += [asyncio.ensure_future(batcher.submit(0, i)) for i in range(1, 10)]
        await until(lambda: batcher.n_waiting == 10, "9 items queued behind the first")
        release.set()
        return await asyncio.gather(*futures)

    assert asyncio.run(main()) == list(range(10))
    # 0 starts alone at once (no window); the rest queued behind it, cut at max_batch
    assert seen == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


def test_oldest_key_goes_first():
    run_batch, release, seen = gated_batches(lambda key, items: key)

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.0, max_batch=8)
        futures = [asyncio.ensure_future(batcher.submit("first", 0))]
        await until(lambda: seen, "the first batch to start")
        for key in ("b", "a", "b", "c", "a"):
            futures.append(asyncio.ensure_future(batcher.submit(key, 1)))
        await until(lambda: batcher.n_waiting == 6, "5 items queued behind the first")
        release.set()
        await asyncio.gather(*futures)

    asyncio.run(main())
    assert seen == ["first", "b", "a", "c"]


def test_no_window_when_nothing_else_is_arriving():
    calls = []

    async def main():
        batcher = MicroBatcher(lambda k, items: list(items), window_s=60.0, max_batch=64,
                               arriving=lambda: calls.append(1) or 0)
        # a 60 s window would time this out: with nothing arriving the batch starts at once
        return await asyncio.wait_for(batcher.submit(0, 5), 20)

    assert asyncio.run(main()) == 5 and calls


def test_cancelled_waits_are_dropped_before_their_batch_runs():
    run_batch, release, seen = gated_batches(lambda key, items: list(items))

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.0, max_batch=8)
        busy = asyncio.ensure_future(batcher.submit(0, "busy"))
        await until(lambda: seen, "the first batch to start")
        gone = asyncio.ensure_future(batcher.submit(0, "gone"))
        await until(lambda: batcher.n_waiting == 2, "'gone' to be queued")
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        kept = asyncio.ensure_future(batcher.submit(0, "kept"))
        await until(lambda: batcher.n_waiting == 2, "'kept' to be queued")
        release.set()
        return await busy, await kept

    assert asyncio.run(main()) == ("busy", "kept")
    assert seen == [["busy"], ["kept"]]


def test_pause_holds_batches_until_resume():
    seen = []

    def run_batch(key, items):
        seen.append(list(items))
        return [x * 10 for x in items]

    async def main():
        batcher = MicroBatcher(run_batch, window_s=0.0, max_batch=3)
        batcher.pause()
        assert batcher.paused
        futures = [asyncio.ensure_future(batcher.submit(0, i)) for i in range(5)]
        await until(lambda: batcher.n_waiting == 5, "5 items queued")
        assert seen == []  # paused: nothing started, not even with window 0
        await asyncio.to_thread(batcher.resume)  # resume() may come from another thread
        return await asyncio.wait_for(asyncio.gather(*futures), 20)

    assert asyncio.run(main()) == [0, 10, 20, 30, 40]
    assert seen == [[0, 1, 2], [3, 4]]  # what queued while paused, cut at max_batch
